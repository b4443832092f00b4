"""Resident memory of `spinfer up` idle and after load, for sizing containers (README › Deploying).

Usage: .venv/bin/python scripts/memory.py [extra `spinfer up` flags, e.g. --max-instance-reuse-count 1]
Starts target/release/spinfer up on spin.toml, reads VmRSS/VmHWM from /proc, sends 16 clients ×
40 `/predict` requests (one client sending 64-image batches), and reads them again.
"""
import gzip
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request


def main():
    server = subprocess.Popen(
        ["target/release/spinfer", "up", "--listen", "127.0.0.1:0", *sys.argv[1:]],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    addr = re.search(r"https?://(\S+)", server.stdout.readline()).group(1)

    def rss():
        status = open(f"/proc/{server.pid}/status").read()
        return dict(re.findall(r"(VmRSS|VmHWM):\s+(\d+ kB)", status))

    print("idle", rss())
    raw = gzip.open("data/mnist/t10k-images-idx3-ubyte.gz").read()[16:]
    single = json.dumps({"pixels": list(raw[:784])}).encode()
    batch = json.dumps({"instances": [list(raw[i * 784:(i + 1) * 784]) for i in range(64)]}).encode()
    errors = []

    def client(body, n):
        for _ in range(n):
            request = urllib.request.Request(f"http://{addr}/predict", body, {"content-type": "application/json"})
            try:
                urllib.request.urlopen(request).read()
            except Exception as e:  # counted and shown, not fatal
                errors.append(str(e))

    threads = [threading.Thread(target=client, args=(batch if i == 0 else single, 40)) for i in range(16)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"after load ({time.time() - started:.1f} s): {rss()}; errors: {len(errors)} {errors[:2]}")
    server.kill()


if __name__ == "__main__":
    main()

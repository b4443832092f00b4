"""What a user would otherwise pick: a plain Python HTTP server around ONNX Runtime.

Serves `POST /predict` with `{"pixels": [784 numbers 0-255]}` like Spinfer does, for
`spinfer bench --python <venv python>`. Prints `listening on http://HOST:PORT` once ready.
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import onnxruntime as ort


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per session")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Without it every response waits ~40 ms on Nagle + delayed ACK, which is not ONNX Runtime.
        disable_nagle_algorithm = True

        def log_message(self, *_args) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            try:
                body = json.loads(self.rfile.read(length))
                pixels = np.asarray(body["pixels"], dtype=np.float32).reshape(1, 1, 28, 28) / 255.0
                probs = session.run(["probs"], {"input": pixels})[0][0]
                label = int(probs.argmax())
                reply = {"label": label, "confidence": float(probs[label]), "probabilities": probs.tolist()}
                status = 200
            except (ValueError, KeyError, TypeError) as error:
                reply, status = {"error": str(error)}, 400
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

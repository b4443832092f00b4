//! A server in a child process, found by the address it prints: `spinfer up` for the tests and
//! the benchmarks, or any server that announces itself the same way (the Python baseline).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

/// The line a server prints once it listens; what [`ServerProcess::start`] waits for.
pub fn banner(app: &str, scheme: &str, addr: SocketAddr) -> String {
    format!("spinfer: serving {app} on {scheme}://{addr}")
}

/// The address in a [`banner`]-style line (`… http://<addr>` or `… https://<addr>`).
fn address_in(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line
        .split_once("http://")
        .or_else(|| line.split_once("https://"))?;
    rest.trim().trim_end_matches('/').parse().ok()
}

/// A child server that is killed (and reaped) when dropped, also when a test fails.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// `spinfer up -f <manifest> --listen 127.0.0.1:0`, with `args` after.
    pub fn up_command(exe: &Path, manifest: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(exe);
        command
            .args(["up", "--listen", "127.0.0.1:0", "-f"])
            .arg(manifest)
            .args(args);
        command
    }

    /// Starts `command` with its stdout piped and waits up to `timeout` for the address it
    /// prints; the rest of its stdout keeps being read (and dropped) so it never blocks.
    pub fn start(mut command: Command, timeout: Duration) -> Result<ServerProcess> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(addr) = lines.by_ref().find_map(|line| address_in(&line)) {
                let _ = tx.send(addr);
            }
            lines.for_each(drop);
        });
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        server.addr = rx.recv_timeout(timeout).map_err(|_| {
            anyhow!(
                "{:?} printed no address within {timeout:?} (exit status: {:?})",
                command.get_program(),
                server.child.try_wait().ok().flatten()
            )
        })?;
        Ok(server)
    }

    /// The process id, to send it signals.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_carries_a_parsable_address() {
        let addr: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        assert_eq!(address_in(&banner("spinfer", "http", addr)), Some(addr));
        assert_eq!(address_in(&banner("spinfer", "https", addr)), Some(addr));
        assert_eq!(
            address_in("listening on http://127.0.0.1:8080/"),
            "127.0.0.1:8080".parse().ok()
        );
        assert_eq!(address_in("no address here"), None);
    }
}

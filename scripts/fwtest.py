"""fwtest — the local services the Python tests and benchmarks run against.

Owns what tests/integration/*.py, tests/bench/*.py, bench/run and
bench/reload.py would otherwise each write again: a free loopback port, a
redis-server of the caller's own (no persistence), the Kafka broker of
scripts/kafka.sh (start, stop, status, topics; or the one scripts/test.sh
started, from FW_KAFKA_PORT), and running a command for its output.  It
starts nothing when imported and reads no command line.

Standard library only; no packaging.  A script imports it by putting this
folder on its path, from its own location:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "scripts"))          # from bench/
    import fwtest  # noqa: E402

(from tests/integration/ and tests/bench/ the folder is "..", "..", "scripts";
the tests/integration/*.py that import test_daemon.py have it from there).
"""
import os
import shutil
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")


class FixtureError(Exception):
    """A service did not start, did not answer, or its tool failed."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    """Runs a command to completion: its CompletedProcess (stdout and stderr
    captured, bytes unless text=True), CalledProcessError if it failed."""
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


class Redis:
    """A redis-server of the caller's own on 127.0.0.1 and a free port, with
    no persistence (no RDB, no AOF): .port, .url; started on creation.
    stop() ends it (SIGTERM, SIGKILL after 10 s), kill() kills it at once,
    start() starts it again on the same port, empty."""

    def __init__(self, workdir=None):
        self.exe = shutil.which("redis-server")
        if not self.exe:
            raise FixtureError("redis-server not found (scripts/deps.sh installs it)")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self, timeout=10):
        cmd = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no"]
        if self.workdir:
            cmd += ["--dir", self.workdir]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise FixtureError(f"redis-server did not answer on port {self.port}")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def cli(self, *args):
        """redis-cli against this server: its output, stripped."""
        p = subprocess.run(["redis-cli", "-p", str(self.port)] + list(args),
                           capture_output=True, text=True)
        return p.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


class Kafka:
    """A single-node broker of scripts/kafka.sh on 127.0.0.1:port, its store
    in run_dir (None: kafka.sh's default for the port): .addr, .port, .dir."""

    def __init__(self, port, run_dir=None):
        self.port = int(port)
        self.dir = run_dir
        self.addr = f"127.0.0.1:{self.port}"
        self.started = False        # start() has run: stop() is the caller's

    @classmethod
    def from_env(cls):
        """The broker scripts/test.sh started (FW_KAFKA_PORT, FW_KAFKA_RUN_DIR),
        or None when FW_KAFKA_PORT is not set."""
        port = os.environ.get("FW_KAFKA_PORT")
        return cls(port, os.environ.get("FW_KAFKA_RUN_DIR")) if port else None

    def _where(self):
        return ["--port", str(self.port)] + (["--dir", self.dir] if self.dir else [])

    def status(self):
        """kafka.sh status: 0 up and answering, 1 running but not answering,
        3 not running."""
        return subprocess.run([KAFKA_SH, "status"] + self._where(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode

    def start(self, fresh=False, log=None):
        """Starts the broker and waits until it answers (kafka.sh start; a
        broker already up on the port is left as it is).  fresh wipes the
        store first.  kafka.sh's output goes to the file log, if given."""
        args = ["start"] + self._where() + (["--fresh"] if fresh else [])
        if log:
            with open(log, "w") as f:
                p = subprocess.run([KAFKA_SH, *args], stdout=f, stderr=subprocess.STDOUT)
            if p.returncode != 0:
                raise FixtureError(f"could not start the broker on {self.addr}; see {log}")
        else:
            self._kafka_sh(*args)
        self.started = True
        return self

    def stop(self):
        """kafka.sh stop: SIGTERM, SIGKILL after its timeout; idempotent."""
        self._kafka_sh("stop", *self._where())

    def topic(self, name, partitions=1):
        """Creates topic name (replication 1) unless it exists."""
        self._kafka_sh("topic", name, "--partitions", str(partitions), "--port", str(self.port))

    def _kafka_sh(self, *args):
        p = subprocess.run([KAFKA_SH, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if p.returncode != 0:
            raise FixtureError(f"scripts/kafka.sh {' '.join(args)}: exit {p.returncode}\n"
                               f"{p.stdout[-2000:]}")

    def pid(self):
        """The broker's process id (its pid file in run_dir), or 0."""
        if not self.dir:
            return 0
        try:
            with open(os.path.join(self.dir, "kafka.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return 0

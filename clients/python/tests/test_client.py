"""End to end: the Python client against a real `nucleus-run serve`.

NUCLEUS_RUN names the binary; each test class starts its own server on a
socket of a temporary directory and stops it (SIGTERM) at the end.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import nucleus  # noqa: E402

NUCLEUS_RUN = os.environ.get("NUCLEUS_RUN", "nucleus-run")
TRUSTED = {"trust_level": "trusted"}


class ServerCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="nucleus-py-")
        cls.socket = os.path.join(cls.dir, "s.sock")
        cls.log = open(os.path.join(cls.dir, "serve.log"), "w")
        cls.server = subprocess.Popen(
            [NUCLEUS_RUN, "serve", "--socket", cls.socket],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=cls.log,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(cls.socket)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        cls.client = nucleus.Client(cls.socket, TRUSTED)

    @classmethod
    def tearDownClass(cls):
        cls.server.send_signal(signal.SIGTERM)
        assert cls.server.wait(timeout=30) == 0
        cls.log.close()
        shutil.rmtree(cls.dir)


class RunTest(ServerCase):
    def test_captured_output_and_exit_code(self):
        r = self.client.run(["/bin/sh", "-c", "echo hi; echo err >&2; exit 3"], capture=True)
        self.assertEqual(r.exit_code, 3)
        self.assertFalse(r.ok)
        self.assertEqual((r.stdout, r.stderr), ("hi\n", "err\n"))
        self.assertEqual(r.raw["schema_version"], 1)
        self.assertIn("network", r.raw["enforced"]["namespaces"])

    def test_output_goes_to_the_callers_file(self):
        path = os.path.join(self.dir, "out.txt")
        with open(path, "w") as out:
            r = self.client.run(["/bin/sh", "-c", "echo one; echo two >&2"], stdout=out, stderr=out)
        self.assertEqual(r.exit_code, 0)
        with open(path) as f:
            self.assertEqual(f.read(), "one\ntwo\n")
        self.assertIsNone(r.stdout)

    def test_stdin_env_and_cwd(self):
        r_fd, w_fd = os.pipe()
        os.write(w_fd, b"from stdin\n")
        os.close(w_fd)
        try:
            r = self.client.run(
                ["/bin/sh", "-c", "cat; echo $GREETING"],
                stdin=r_fd, env={"GREETING": "hello"}, capture=True,
            )
        finally:
            os.close(r_fd)
        self.assertEqual(r.stdout, "from stdin\nhello\n")

    def test_timeout_kills_the_sandbox(self):
        start = time.monotonic()
        r = self.client.run(["/bin/sleep", "30"], timeout=0.5)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(r.killed_by, "timeout")
        self.assertNotEqual(r.exit_code, 0)

    def test_containment_holds(self):
        r = self.client.run(["/bin/sh", "-c", "cat /etc/shadow | wc -c; touch /usr/x"], capture=True)
        self.assertEqual(r.stdout, "0\n")
        self.assertIn("Read-only file system", r.stderr)

    def test_setup_errors_are_server_errors(self):
        with self.assertRaises(nucleus.ServerError) as caught:
            self.client.run([])
        self.assertEqual(caught.exception.kind, "setup")
        self.assertIn("no command", caught.exception.message)
        with self.assertRaises(nucleus.ServerError) as caught:
            self.client.run(["/bin/true"], envelope={"no_such_key": 1})
        self.assertEqual(caught.exception.kind, "bad-request")

    def test_many_clients_at_once(self):
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(
                lambda i: self.client.run(["/bin/sh", "-c", f"echo {i}"], capture=True), range(24)))
        self.assertEqual([r.stdout for r in results], [f"{i}\n" for i in range(24)])

    @unittest.skipUnless(shutil.which("runsc") and os.geteuid() == 0, "gVisor runs as root with runsc")
    def test_untrusted_runs_under_gvisor(self):
        r = self.client.run(["/bin/echo", "in gvisor"], capture=True,
                            envelope={"trust_level": "untrusted"})
        self.assertEqual(r.stdout, "in gvisor\n")
        self.assertEqual(r.raw["enforced"]["runtime"], "gvisor")


class SessionTest(ServerCase):
    def test_files_persist_between_commands_and_go_with_the_session(self):
        with self.client.session() as s:
            self.assertEqual(s.run(["/bin/sh", "-c", "echo 42 > /tmp/answer"]).exit_code, 0)
            r = s.run(["cat", "/tmp/answer"], timeout=10, capture=True)
            self.assertEqual((r.exit_code, r.stdout), (0, "42\n"))
            self.assertIn(s.name, [x["name"] for x in self.client.sessions()])
        self.assertNotIn(s.name, [x["name"] for x in self.client.sessions()])
        with self.assertRaises(nucleus.ServerError) as caught:
            s.run(["/bin/true"])
        self.assertEqual(caught.exception.kind, "not-found")
        with nucleus.Session(self.socket, TRUSTED, name=s.name) as again:
            r = again.run(["cat", "/tmp/answer"], capture=True)
            self.assertEqual(r.exit_code, 1)

    def test_a_timeout_ends_the_command_not_the_session(self):
        with self.client.session(idle_timeout=60) as s:
            r = s.run(["/bin/sleep", "30"], timeout=0.5)
            self.assertEqual(r.killed_by, "timeout")
            r = s.run(["/bin/sh", "-c", "echo $X; pwd"], env={"X": "y"}, workdir="/tmp", capture=True)
            self.assertEqual(r.stdout, "y\n/tmp\n")

    @unittest.skipUnless(shutil.which("runsc") and os.geteuid() == 0, "gVisor runs as root with runsc")
    def test_a_session_under_gvisor(self):
        with nucleus.Session(self.client, {"trust_level": "untrusted"}) as s:
            self.assertEqual(s.run(["/bin/sh", "-c", "echo 42 > /tmp/answer"]).exit_code, 0)
            r = s.run(["cat", "/tmp/answer"], capture=True)
            self.assertEqual((r.exit_code, r.stdout), (0, "42\n"))
            self.assertEqual(r.raw["enforced"]["runtime"], "gvisor")
            r = s.run(["/bin/sleep", "30"], timeout=0.5)
            self.assertEqual(r.killed_by, "timeout")

    def test_names_are_checked_and_unique(self):
        with self.assertRaises(nucleus.ServerError) as caught:
            nucleus.Session(self.client, TRUSTED, name="../x").create()
        self.assertEqual(caught.exception.kind, "bad-request")
        with self.client.session(name="dup") as s:
            with self.assertRaises(nucleus.ServerError) as caught:
                nucleus.Session(self.client, TRUSTED, name="dup").create()
            self.assertEqual(caught.exception.kind, "exists")
            self.assertEqual(s.run(["/bin/true"]).exit_code, 0)


class NoServerTest(unittest.TestCase):
    def test_a_missing_server_is_an_os_error(self):
        client = nucleus.Client("/nonexistent/nucleus.sock")
        with self.assertRaises(OSError):
            client.run(["/bin/true"])


if __name__ == "__main__":
    unittest.main()

"""What the benchmark scripts share: the exchange's JSON API and wrk's results
(imported by the Python parts of scripts/load.sh and scripts/bench-scale.sh, which run
from the repository's root)."""

import json
import sys
import urllib.error
import urllib.request

PASSWORD = "baohan-demo-2026"


class Api:
    def __init__(self, base, timeout=30):
        self.base = base
        self.timeout = timeout

    def call(self, method, path, token=None, body=None, expect=(200, 201)):
        """The answer's JSON (None when empty); ends the script on any other status."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                status, text = res.status, res.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if status not in expect:
            sys.exit(f"{method} {path}: HTTP {status}: {text[:400]}")
        return json.loads(text) if text else None


def wrk_runs(tmp):
    """The wrk runs of a measurement, by name, each (label, figures), in the order they
    ran (TMP/runs.txt lists "name|label"; TMP/NAME.result holds wrk's RESULT line), and
    the reference rate: the mean of the /healthz runs before and after."""
    def load(name):
        with open(f"{tmp}/{name}.result") as f:
            fields = dict(kv.split("=") for kv in f.read().split()[1:])
        r = {k: int(v) for k, v in fields.items()}
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        return r
    with open(f"{tmp}/runs.txt") as f:
        listed = [line.rstrip("\n").split("|", 1) for line in f if line.strip()]
    runs = {name: (label, load(name)) for name, label in listed}
    ref = (runs["healthz_before"][1]["rps"] + runs["healthz_after"][1]["rps"]) / 2
    return runs, ref

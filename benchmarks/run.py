"""Every benchmark in one run: lxdimages against lxc, pylxd 2.4.2, curl and nginx.

    scripts/bench                      # set-up, then this with the defaults
    .venv/bin/python benchmarks/run.py --size-mib 512 --reps 5

Throwaway LXD daemons serve every tool in the same run; tools are alternated
within each repetition and the median is reported, with ratios against the
reference of each workload. pylxd is installed in its own virtual environment.
Python tools are timed inside their process (interpreter start-up excluded, as
for a library call; the ``lxdimages CLI`` rows show the whole command), command
line tools from start to exit. Peak RSS is each process's own. Results go to
``docs/benchmarks.md`` (table), ``docs/benchmarks.png`` (chart) and
``docs/benchmarks.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import lxdimages
from lxdimages.certificates import generate_self_signed
from lxdimages.simplestreams import ServerCertificate, Tree
from lxdimages.testing import ThrowawayDaemon, free_port, write_split_image, write_unified_image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUNNER = HERE / "runner.py"
PYLXD_VERSION = "2.4.2"
MIB = 1024 * 1024


@dataclass
class Sample:
    seconds: float
    rss_mib: float


@dataclass
class Workload:
    name: str
    title: str
    reference: str
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def median(self, tool: str) -> float:
        return statistics.median(s.seconds for s in self.samples[tool])

    def rss(self, tool: str) -> float:
        return max(s.rss_mib for s in self.samples[tool])


class Children:
    """Run one child at a time under /usr/bin/time, which reports its peak RSS.

    Measuring through ``time`` matters: a child forked straight from this process
    would count this process's pages in its own peak until it execs.
    """

    @staticmethod
    def run(command: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
        with tempfile.NamedTemporaryFile("r") as rss_file:
            start = time.perf_counter()
            done = subprocess.run(
                ["/usr/bin/time", "-q", "-f", "%M", "-o", rss_file.name, *command],
                env=env, capture_output=True, text=True,
            )
            wall = time.perf_counter() - start
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-2000:]}")
            return wall, int(rss_file.read().split()[-1]) / 1024, done.stdout


class Bench:
    def __init__(self, work: Path, size_mib: int, reps: int) -> None:
        self.work = work
        self.size = size_mib * MIB
        self.reps = reps
        self.workloads: list[Workload] = []
        self.pylxd_python = self._pylxd()
        cert_dir = work / "client"
        cert_dir.mkdir()
        self.cert = (str(cert_dir / "client.crt"), str(cert_dir / "client.key"))
        generate_self_signed(*self.cert, common_name="bench", client=True)
        self.source = ThrowawayDaemon("lxd").start()
        self.target = ThrowawayDaemon("lxd").start()
        self.source.listen_https()
        self.target.listen_https()
        self.target.trust(Path(self.cert[0]).read_text())
        self.pinned = work / "target.crt"
        self.pinned.write_text(self.target.server_certificate())
        self.lxc_env = self._lxc_config()

    def close(self) -> None:
        self.source.stop()
        self.target.stop()

    # -- set-up ------------------------------------------------------------------

    def _pylxd(self) -> str:
        venv = ROOT / ".venv-pylxd"
        python = venv / "bin/python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"pylxd=={PYLXD_VERSION}"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return str(python)

    def _lxc_config(self) -> dict[str, str]:
        conf = self.work / "lxc"
        (conf / "servercerts").mkdir(parents=True)
        shutil.copyfile(self.cert[0], conf / "client.crt")
        shutil.copyfile(self.cert[1], conf / "client.key")
        shutil.copyfile(self.pinned, conf / "servercerts/b.crt")
        (conf / "config.yml").write_text(
            json.dumps({"remotes": {"b": {"addr": self.target.https_url, "protocol": "lxd"}}})
        )
        return {**os.environ, "LXD_DIR": str(self.source.directory), "LXD_CONF": str(conf)}

    # -- tools -----------------------------------------------------------------------

    def python_tool(self, tool: str, op: str, **args: Any) -> Callable[[], Sample]:
        python = self.pylxd_python if tool == "pylxd" else sys.executable

        def run() -> Sample:
            _, rss, out = Children.run([python, str(RUNNER), tool, op, json.dumps(args)])
            return Sample(json.loads(out.strip().splitlines()[-1])["seconds"], rss)

        return run

    def command_tool(self, *command: str, env: dict[str, str] | None = None) -> Callable[[], Sample]:
        def run() -> Sample:
            wall, rss, _ = Children.run(command, env)
            return Sample(wall, rss)

        return run

    def clean(self, daemon: ThrowawayDaemon) -> None:
        with daemon.client() as client:
            for image in client.images.all():
                image.delete(wait=True)

    def measure(
        self,
        workload: Workload,
        tools: dict[str, Callable[[], Sample]],
        after: Callable[[], None] = lambda: None,
    ) -> Workload:
        """Alternate the tools within each repetition; one warm-up round is not kept.

        Each run starts after ``sync``, so none pays for the write-back of another.
        """
        for rep in range(self.reps + 1):
            for tool, run in tools.items():
                os.sync()  # no run pays for the previous one's dirty pages
                sample = run()
                after()
                if rep:
                    workload.samples.setdefault(tool, []).append(sample)
        self.workloads.append(workload)
        print(report_lines(workload), flush=True)
        return workload

    # -- workloads ---------------------------------------------------------------------

    def imports(self) -> None:
        socket = self.source.socket_path
        unified = write_unified_image(self.work / "unified.tar", payload_size=self.size, compress=False)
        cli = str(Path(sys.executable).with_name("lxdimages"))
        self.measure(
            Workload("import", f"Import, unified {self.size // MIB} MiB", "lxc image import"),
            {
                "lxc image import": self.command_tool("lxc", "image", "import", str(unified), env=self.lxc_env),
                "lxdimages": self.python_tool("lxdimages", "import", socket=socket, path=str(unified)),
                "lxdimages, progress on": self.python_tool(
                    "lxdimages-progress", "import", socket=socket, path=str(unified)
                ),
                "lxdimages, verify=False": self.python_tool(
                    "lxdimages", "import", socket=socket, path=str(unified), verify=False
                ),
                "lxdimages CLI (whole process)": self.command_tool(
                    cli, "-q", "import", str(unified), env={**os.environ, "LXD_DIR": str(self.source.directory)}
                ),
                "pylxd": self.python_tool("pylxd", "import", socket=socket, path=str(unified)),
            },
            after=lambda: self.clean(self.source),
        )
        metadata, rootfs = write_split_image(self.work, payload_size=self.size)
        self.measure(
            Workload("import-split", f"Import, split {self.size // MIB} MiB", "lxc image import"),
            {
                "lxc image import": self.command_tool(
                    "lxc", "image", "import", str(metadata), str(rootfs), env=self.lxc_env
                ),
                "lxdimages": self.python_tool(
                    "lxdimages", "import-split", socket=socket, metadata=str(metadata), rootfs=str(rootfs)
                ),
                "pylxd": self.python_tool(
                    "pylxd", "import-split", socket=socket, metadata=str(metadata), rootfs=str(rootfs)
                ),
            },
            after=lambda: self.clean(self.source),
        )
        self.unified, self.metadata, self.rootfs = unified, metadata, rootfs

    def exports(self) -> None:
        socket = self.source.socket_path
        out = self.work / "out"
        out.mkdir()

        def empty() -> None:
            for path in out.iterdir():
                path.unlink()

        with self.source.client() as client:
            unified = client.images.create(self.unified).fingerprint
            split = client.images.create(self.rootfs, metadata=self.metadata).fingerprint
        cli = str(Path(sys.executable).with_name("lxdimages"))
        for name, fingerprint, pylxd_too in (("export", unified, True), ("export-split", split, False)):
            tools = {
                "raw HTTP (curl)": self.command_tool(
                    "curl", "-sf", "--unix-socket", socket, "-o", str(out / "raw"),
                    f"http://lxd/1.0/images/{fingerprint}/export",
                ),
                "lxc image export": self.command_tool(
                    "lxc", "image", "export", fingerprint, f"{out}/", env=self.lxc_env
                ),
                "lxdimages": self.python_tool(
                    "lxdimages", "export", socket=socket, fingerprint=fingerprint, directory=str(out)
                ),
            }
            if pylxd_too:
                # What bounds a verified export on this machine: the same download
                # without the hash, and the hash alone, beside the full call.
                tools["analysis: Python download, no sha256"] = self.python_tool(
                    "lxdimages", "download-only", socket=socket, fingerprint=fingerprint,
                    directory=str(out),
                )
                tools["analysis: sha256 pass alone"] = self.python_tool(
                    "lxdimages", "sha256", path=str(self.unified), socket=""
                )
                tools["lxdimages CLI (whole process)"] = self.command_tool(
                    cli, "-q", "export", fingerprint, str(out),
                    env={**os.environ, "LXD_DIR": str(self.source.directory)},
                )
                tools["pylxd"] = self.python_tool(
                    "pylxd", "export", socket=socket, fingerprint=fingerprint, directory=str(out)
                )
            kind = "unified" if pylxd_too else "split"
            self.measure(
                Workload(name, f"Export with sha256 check, {kind} {self.size // MIB} MiB", "raw HTTP (curl)"),
                tools,
                after=empty,
            )
        self.exported = unified

    def copies(self) -> None:
        # lxdimages talks to both daemons on their unix sockets, as in the import and
        # export it is compared with; a pull has the target fetch over HTTPS.
        common = {"socket": self.source.socket_path, "fingerprint": self.exported,
                  "target": self.target.socket_path}
        self.measure(
            Workload("copy", f"Copy between two daemons, {self.size // MIB} MiB", "lxc image copy"),
            {
                "lxc image copy": self.command_tool("lxc", "image", "copy", self.exported, "b:", env=self.lxc_env),
                "lxdimages relay": self.python_tool("lxdimages", "copy-relay", **common),
                "lxdimages pull": self.python_tool("lxdimages", "copy-pull", **common),
            },
            after=lambda: self.clean(self.target),
        )

    def listing(self, count: int = 200) -> None:
        self.clean(self.source)
        with self.source.client() as client:
            for n in range(count):
                client.images.create(_tiny_image(n), filename=f"tiny-{n}.tar")
        socket = self.source.socket_path
        self.measure(
            Workload("list", f"List {count} images, every attribute read", "raw HTTP (curl)"),
            {
                "raw HTTP (curl)": self.command_tool(
                    "curl", "-sf", "--unix-socket", socket, "-o", "/dev/null",
                    "http://lxd/1.0/images?recursion=1",
                ),
                "lxdimages": self.python_tool("lxdimages", "list", socket=socket),
                "pylxd": self.python_tool("pylxd", "list", socket=socket),
            },
        )
        self.clean(self.source)

    def publishing(self) -> None:
        tree = self.work / "tree"
        self.measure(
            Workload("publish", f"Publish a unified {self.size // MIB} MiB image", "sha256 pass"),
            {
                "sha256 pass": self.python_tool("lxdimages", "sha256", path=str(self.unified), socket=""),
                "lxdimages publish": self.python_tool(
                    "lxdimages", "publish", path=str(self.unified), tree=str(tree), socket=""
                ),
            },
            after=lambda: shutil.rmtree(tree, ignore_errors=True),
        )

    def serving(self) -> None:
        tree = Tree(self.work / "served")
        tree.add(self.unified, os_name="bench", release="1", aliases=["bench/1"])
        certificate = ServerCertificate.self_signed(self.work / "serve-cert", "127.0.0.1")
        serve_port, nginx_port = free_port(), free_port()
        serve = subprocess.Popen(
            [str(Path(sys.executable).with_name("lxdimages")), "serve", str(tree.root),
             "--port", str(serve_port), "--cert", str(certificate.cert_path),
             "--key", str(certificate.key_path)],
            stdout=subprocess.DEVNULL,
        )
        nginx_conf = self.work / "nginx.conf"
        block = (ROOT / "examples/nginx-simplestreams.conf").read_text()
        block = (
            block.replace("127.0.0.1:8443", f"127.0.0.1:{nginx_port}")
            .replace("/etc/lxdimages/server.crt", str(certificate.cert_path))
            .replace("/etc/lxdimages/server.key", str(certificate.key_path))
            .replace("/srv/images", str(tree.root))
        )
        work = self.work
        nginx_conf.write_text(
            f"daemon off; user root; pid {work}/nginx.pid; error_log {work}/nginx.log;\n"
            "worker_processes 2; events {}\n"
            f"http {{ access_log off; sendfile on; client_body_temp_path {work}; proxy_temp_path {work};\n"
            f"fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};\n{block}\n}}\n"
        )
        nginx = subprocess.Popen(["/usr/sbin/nginx", "-c", str(nginx_conf)])
        try:
            for port in (serve_port, nginx_port):
                _wait_for(f"https://127.0.0.1:{port}/streams/v1/index.json")
            socket = self.source.socket_path
            common = {"socket": socket, "alias": "bench/1", "certificate": certificate.pem}
            self.measure(
                Workload("serve", f"A daemon downloads {self.size // MIB} MiB from a served tree", "nginx"),
                {
                    "nginx": self.python_tool("lxdimages", "download", url=f"https://127.0.0.1:{nginx_port}", **common),
                    "lxdimages serve": self.python_tool(
                        "lxdimages", "download", url=f"https://127.0.0.1:{serve_port}", **common
                    ),
                },
                after=lambda: self.clean(self.source),
            )
        finally:
            serve.terminate()
            nginx.terminate()
            serve.wait()
            nginx.wait()

    def memory(self) -> dict[str, dict[str, float]]:
        """lxdimages' peak RSS at 64 MiB and 1 GiB images, import and export."""
        peaks: dict[str, dict[str, float]] = {}
        socket = self.source.socket_path
        out = self.work / "memory-out"
        out.mkdir()
        for size_mib in (64, 1024):
            image = write_unified_image(self.work / f"m{size_mib}.tar", payload_size=size_mib * MIB, compress=False)
            imported = self.python_tool("lxdimages", "import", socket=socket, path=str(image))()
            with self.source.client() as client:
                fingerprint = client.images.all()[0].fingerprint
            exported = self.python_tool(
                "lxdimages", "export", socket=socket, fingerprint=fingerprint, directory=str(out)
            )()
            peaks[f"{size_mib} MiB"] = {"import": imported.rss_mib, "export": exported.rss_mib}
            image.unlink()
            for path in out.iterdir():
                path.unlink()
            self.clean(self.source)
        print(f"lxdimages peak RSS: {peaks}", flush=True)
        return peaks


def _tiny_image(n: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (
            ("metadata.yaml", f"architecture: x86_64\ncreation_date: {1700000000 + n}\nproperties:\n  os: tiny\n  release: '{n}'\n".encode()),
            ("rootfs/id", str(n).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _wait_for(url: str) -> None:
    for _ in range(100):
        try:
            if httpx.get(url, verify=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} does not answer")


# -- reporting ------------------------------------------------------------------------

TARGETS: list[tuple[str, str, str, float, str]] = [
    # (workload, tool, against, ratio limit, what)
    ("import", "lxdimages", "lxc image import", 1.05, "import wall <= 1.05 x lxc image import"),
    ("export", "lxdimages", "raw HTTP (curl)", 1.15, "verified export wall <= 1.15 x raw HTTP download"),
    ("list", "lxdimages", "raw HTTP (curl)", 1.10, "listing wall <= 1.1 x one recursion=1 request"),
    ("import", "lxdimages, progress on", "lxdimages", 1.03, "progress on <= 1.03 x progress off"),
    ("serve", "lxdimages serve", "nginx", 1.25, "daemon download from serve <= 1.25 x from nginx"),
    ("publish", "lxdimages publish", "sha256 pass", 1.20, "publish <= 1.2 x one sha256 pass"),
]


def report_lines(workload: Workload) -> str:
    lines = [f"\n{workload.title} (reference: {workload.reference})"]
    reference = workload.median(workload.reference)
    for tool in workload.samples:
        seconds = [s.seconds for s in workload.samples[tool]]
        lines.append(
            f"  {tool:32} {workload.median(tool):7.3f} s  ({min(seconds):.3f}-{max(seconds):.3f})  "
            f"x{workload.median(tool) / reference:5.2f}  peak RSS {workload.rss(tool):6.1f} MiB"
        )
    return "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    os_name = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    ).get("PRETTY_NAME", "").strip('"')
    lxd = subprocess.run(["lxd", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{memory_kib / 1024 / 1024:.0f} GiB",
        "os": f"{os_name}, kernel {platform.release()}",
        "lxd": lxd,
        "python": platform.python_version(),
        "lxdimages": lxdimages.__version__,
        "pylxd": PYLXD_VERSION,
    }


def write_report(bench: Bench, peaks: dict[str, dict[str, float]], out_dir: Path) -> None:
    by_name = {w.name: w for w in bench.workloads}
    target_rows = []
    for name, tool, against, limit, what in TARGETS:
        workload = by_name[name]
        ratio = workload.median(tool) / workload.median(against)
        target_rows.append((what, ratio, limit, ratio <= limit))
    relay = by_name["copy"].median("lxdimages relay")
    slower = max(by_name["import"].median("lxdimages"), by_name["export"].median("lxdimages"))
    target_rows.append(
        ("relay copy <= 1.2 x the slower of export and import alone", relay / slower, 1.2, relay / slower <= 1.2)
    )
    rss_limit = 48.0
    worst = max(max(v.values()) for v in peaks.values())
    worst_transfer = max(by_name[n].rss(t) for n, t in (("import", "lxdimages"), ("export", "lxdimages")))
    target_rows.append(("lxdimages peak RSS <= 48 MiB (import, export; 64 MiB to 1 GiB)",
                        max(worst, worst_transfer), rss_limit, max(worst, worst_transfer) <= rss_limit))

    info = machine()
    md = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `scripts/bench` "
        f"(`benchmarks/run.py --size-mib {bench.size // MIB} --reps {bench.reps}`): medians of "
        f"{bench.reps} repetitions after one warm-up, the tools alternated within each "
        "repetition, against throwaway LXD daemons on this machine.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()) + ".",
        "",
        "Python tools are timed inside their process (the library call, interpreter "
        "start-up excluded); `lxdimages CLI (whole process)` rows time the whole command, "
        "as are `lxc`, `curl` and the daemon's downloads. Peak RSS is each process's own "
        "maximum over the repetitions.",
        "",
        "## Targets",
        "",
        "| target | measured | limit | holds |",
        "|---|---|---|---|",
    ]
    for what, value, limit, holds in target_rows:
        unit = " MiB" if "RSS" in what else "x"
        md.append(f"| {what} | {value:.2f}{unit} | {limit:.2f}{unit} | {'yes' if holds else '**no**'} |")
    md += ["", "## Results", ""]
    for workload in bench.workloads:
        reference = workload.median(workload.reference)
        md += [f"### {workload.title}", "", "| tool | median s | min-max s | ratio | peak RSS MiB |", "|---|---|---|---|---|"]
        for tool, samples in workload.samples.items():
            seconds = [s.seconds for s in samples]
            md.append(
                f"| {tool} | {workload.median(tool):.3f} | {min(seconds):.3f}-{max(seconds):.3f} | "
                f"{workload.median(tool) / reference:.2f} | {workload.rss(tool):.1f} |"
            )
        md.append("")
    md += ["## lxdimages peak RSS by image size", "", "| image | import MiB | export MiB |", "|---|---|---|"]
    for size, values in peaks.items():
        md.append(f"| {size} | {values['import']:.1f} | {values['export']:.1f} |")
    md += ["", "![ratios](benchmarks.png)", ""]
    (out_dir / "benchmarks.md").write_text("\n".join(md))
    (out_dir / "benchmarks.json").write_text(
        json.dumps(
            {
                "machine": info,
                "size_mib": bench.size // MIB,
                "reps": bench.reps,
                "workloads": {
                    w.name: {t: [s.__dict__ for s in v] for t, v in w.samples.items()}
                    for w in bench.workloads
                },
                "peak_rss": peaks,
                "targets": [
                    {"target": w, "measured": v, "limit": l, "holds": h} for w, v, l, h in target_rows
                ],
            },
            indent=1,
        )
    )
    chart(bench, out_dir / "benchmarks.png")


def chart(bench: Bench, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        (f"{w.title}: {tool}", w.median(tool) / w.median(w.reference), tool.startswith("lxdimages"))
        for w in bench.workloads
        for tool in w.samples
    ]
    figure, axes = plt.subplots(figsize=(12, 0.32 * len(rows) + 1.2))
    labels = [r[0] for r in rows][::-1]
    values = [r[1] for r in rows][::-1]
    colours = ["#d9534f" if r[2] else "#8c8c8c" for r in rows][::-1]
    axes.barh(labels, values, color=colours)
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_xlabel("wall time / the workload's reference (median; lower is better)")
    axes.set_title(f"lxdimages vs peers, {bench.size // MIB} MiB images, median of {bench.reps}")
    axes.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark; write docs/benchmarks.*")
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    if args.reps < 5:
        print("note: fewer than 5 repetitions; the report says so", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lxdimages-bench-", dir=os.environ.get("BENCH_TMP")) as work:
        bench = Bench(Path(work), args.size_mib, args.reps)
        try:
            bench.imports()
            bench.exports()
            bench.copies()
            bench.listing()
            bench.publishing()
            bench.serving()
            peaks = bench.memory()
        finally:
            bench.close()
        args.out.mkdir(parents=True, exist_ok=True)
        write_report(bench, peaks, args.out)
    print(f"\nwrote {args.out / 'benchmarks.md'} and {args.out / 'benchmarks.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

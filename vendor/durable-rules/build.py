"""durable-rules 2.0.28 from its PyPI sdist with cxrules' patch, built optimised.

    python vendor/durable-rules/build.py                 # a wheel for this Python, in vendor/durable-rules/dist/
    python vendor/durable-rules/build.py wheel --force   # build again even if that wheel is there
    python vendor/durable-rules/build.py source DIR      # the patched source tree only (what cibuildwheel builds)
    python vendor/durable-rules/build.py cross-check     # compile it with clang for Windows, macOS and Linux (needs ziglang)

Then:  pip install --find-links vendor/durable-rules/dist cxrules   (or -e . from a clone)

Steps: `pip download --no-binary :all: --no-deps durable-rules==2.0.28` (kept in dist/ and checked
against its SHA-256), unpack, `git apply` (or `patch -p1`) durable-rules-2.0.28.patch, then
`pip wheel`. The C compiler gets the user's CFLAGS, else Python's own (-O2/-O3: the patch keeps
them), and, through CPPFLAGS as in the release workflow (cibuildwheel.toml), gcc 14's default
errors on Linux and macOS (-Werror=implicit-function-declaration -Werror=incompatible-pointer-types
-Werror=int-conversion), so code that newer compilers refuse fails here too. The line that
compiled the Python binding is printed, and the build log kept in dist/. Run it with the Python
the wheel is for (a venv's python is fine).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATCH = HERE / "durable-rules-2.0.28.patch"
DIST = HERE / "dist"
VERSION = "2.0.28"
SDIST = f"durable_rules-{VERSION}.tar.gz"
SDIST_SHA256 = "053b26f5e48d312d4fa27995243f954671be6eece477f150c059c364eb4d7d61"
STRICT = "-Werror=implicit-function-declaration -Werror=incompatible-pointer-types -Werror=int-conversion"
ENGINE_SOURCES = ("json", "rete", "state", "events", "regex")  # setup.py's build_clib library


class BuildError(Exception):
    pass


def run(cmd, **kw):
    try:
        return subprocess.run(cmd, check=True, **kw)
    except FileNotFoundError:
        raise BuildError(f"{cmd[0]} not found") from None
    except subprocess.CalledProcessError as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise BuildError(f"{' '.join(map(str, cmd[:4]))} ... failed (exit {e.returncode})" + (f":\n{out[-4000:]}" if out else "")) from None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def sdist(cache: Path = DIST) -> Path:
    """The PyPI sdist, downloaded once into `cache` and checked."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / SDIST
    if not path.is_file() or sha256(path) != SDIST_SHA256:
        with tempfile.TemporaryDirectory() as tmp:
            run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
                 f"durable-rules=={VERSION}", "-d", tmp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            got = next(Path(tmp).glob("durable*rules-*.tar.gz"), None)
            if got is None:
                raise BuildError(f"pip download gave no {SDIST}")
            shutil.copyfile(got, path)
    digest = sha256(path)
    if digest != SDIST_SHA256:
        path.unlink()
        raise BuildError(f"{SDIST} has SHA-256 {digest}, expected {SDIST_SHA256}: not the published file")
    return path


def source(dest: Path, patch: bool = True) -> Path:
    """Unpack the sdist into dest (which must not exist) and apply the patch."""
    if dest.exists():
        raise BuildError(f"{dest} exists; give a new folder")
    archive = sdist()
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(tmp, filter="data")
            else:  # Python without the extraction filters (before 3.10.12 / 3.11.4)
                tf.extractall(tmp)  # noqa: S202 - the archive's SHA-256 was checked above
        top = Path(tmp) / f"durable_rules-{VERSION}"
        if patch:
            apply_patch(top)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(top), str(dest))
    return dest


def apply_patch(tree: Path) -> None:
    # GIT_CEILING_DIRECTORIES: never mistake an enclosing repository for this tree
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tree.parent))
    if shutil.which("git"):
        run(["git", "apply", "--whitespace=nowarn", str(PATCH)], cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    elif shutil.which("patch"):
        run(["patch", "-p1", "--forward", "--quiet", "-i", str(PATCH)], cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    else:
        raise BuildError("neither git nor patch is installed; install one of them (e.g. apt-get install git)")
    text = (tree / "src" / "rulespy" / "rules.c").read_text(encoding="utf-8", errors="replace")
    if "PyEval_CallObject" in text:
        raise BuildError("the patch did not apply: src/rulespy/rules.c still calls PyEval_CallObject")


def build_env(strict: bool = True) -> dict:
    """The environment of the build: gcc 14's default errors added to CPPFLAGS (MSVC reads neither)."""
    env = dict(os.environ)
    if strict and sys.platform != "win32":
        env["CPPFLAGS"] = f"{env.get('CPPFLAGS', '')} {STRICT}".strip()
    return env


def tag() -> str:
    return f"cp{sys.version_info[0]}{sys.version_info[1]}"


def existing_wheel(out: Path) -> Path | None:
    t = tag()
    newest_input = max(PATCH.stat().st_mtime, Path(__file__).stat().st_mtime)
    for w in sorted(out.glob(f"durable_rules-{VERSION}-{t}-{t}-*.whl")):
        if w.stat().st_mtime >= newest_input:
            return w
    return None


def wheel(out: Path = DIST, force: bool = False, strict: bool = True) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if not force:
        w = existing_wheel(out)
        if w is not None:
            print(f"durable-rules {VERSION} (patched) for {tag()}: {w} (already built; --force to build again)")
            return w
    log = out / f"build-{tag()}-{sys.platform}.log"
    env = build_env(strict)
    flags = " ".join(f"{k}='{env[k]}'" for k in ("CFLAGS", "CPPFLAGS") if k in env) or "Python's own flags"
    with tempfile.TemporaryDirectory() as tmp:
        tree = source(Path(tmp) / "src")
        wheels = Path(tmp) / "wheels"
        p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-v", "-w", str(wheels), str(tree)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = p.stdout.decode(errors="replace")
        log.write_text(text, encoding="utf-8")
        if p.returncode:
            errors = [ln.strip() for ln in text.splitlines() if " error" in ln or "error:" in ln]
            raise BuildError(f"durable-rules did not build for Python {sys.version.split()[0]} with {flags}; "
                             f"full log: {log}\n" + "\n".join(errors[-15:]))
        built = next(wheels.glob("*.whl"))
        dst = out / built.name
        shutil.copyfile(built, dst)
    binding = [ln.strip() for ln in text.splitlines() if "src/rulespy/rules.c" in ln and " -c " in ln]
    print(f"durable-rules {VERSION} (patched) for Python {sys.version.split()[0]}: {dst}")
    if binding:
        print(f"  compiled with: {binding[0]}")
    print(f"  build log: {log}")
    return dst


# ------------------------------------------------------------------ cross-check with clang (zig)
def cross_check(strict: bool = True, patch: bool = True) -> None:
    """Compile the engine with zig's clang for Windows (x86_64, MinGW headers), macOS (arm64,
    x86_64) and this Linux, link each, and import the Linux build: compile errors show here,
    before a release run on those machines. MinGW is not MSVC: the engine's MSVC-only
    assumptions (the header spelt WinSock2.h, its own asprintf) are bridged the way MSVC
    sees them (a WinSock2.h that includes winsock2.h, no _GNU_SOURCE: MSVC gets no CFLAGS)."""
    try:
        import ziglang  # noqa: F401
    except ImportError:
        raise BuildError("cross-check needs zig's C compiler: pip install ziglang") from None
    zig = [sys.executable, "-m", "ziglang", "cc"]
    version = subprocess.run(zig + ["--version"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
    werror = STRICT.split() if strict else []
    base = ["-std=c99", "-O2", "-Wall", "-Wno-macro-redefined"] + werror
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tree = source(tmp / "src", patch)
        shim = tmp / "shim"
        shim.mkdir()
        (shim / "WinSock2.h").write_text("#include <winsock2.h>\n")
        engine = [tree / "src" / "rules" / f"{s}.c" for s in ENGINE_SOURCES]
        targets = [
            ("x86_64-windows-gnu", [f"-I{shim}"], ["-shared", "-lws2_32"], "engine.dll"),
            ("aarch64-macos", ["-D_GNU_SOURCE", "-fcommon"], ["-dynamiclib"], "libengine.dylib"),
            ("x86_64-macos", ["-D_GNU_SOURCE", "-fcommon"], ["-dynamiclib"], "libengine.dylib"),
        ]
        print(f"cross-check of the {'patched' if patch else 'unpatched'} source with {version}, flags: {' '.join(base)}")
        for target, extra, link, lib in targets:
            objs = _compile(zig + ["-target", target], base + extra, engine, tmp / target)
            run(zig + ["-target", target] + [str(o) for o in objs] + link + ["-o", str(tmp / target / lib)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            print(f"  {target:<20} {len(objs)} engine sources compiled, {lib} linked: ok")
        # this machine: the whole extension module with clang, then imported and run
        if sys.platform.startswith("linux"):
            inc = sysconfig.get_paths()["include"]
            ext = tmp / "linux"
            objs = _compile(zig, base + ["-D_GNU_SOURCE", "-fPIC"], engine, ext)
            objs += _compile(zig, base + ["-D_GNU_SOURCE", "-fPIC", f"-I{tree / 'src' / 'rules'}", f"-I{inc}"],
                             [tree / "src" / "rulespy" / "rules.c"], ext)
            so = ext / ("durable_rules_engine" + sysconfig.get_config_var("EXT_SUFFIX"))
            run(zig + ["-shared", "-Wl,--allow-shlib-undefined"] + [str(o) for o in objs] + ["-o", str(so)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            r = subprocess.run([sys.executable, str(HERE / "smoke.py")], cwd=ext, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ext), str(tree / "libpy")])))
            if r.returncode:
                raise BuildError(f"the clang build for this Python does not run: {r.stdout.strip()[-2000:]}")
            print(f"  {'linux (this Python)':<20} engine and Python binding compiled, {so.name} linked; smoke.py: ok")


def _compile(cc, flags, sources, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    objs = []
    for src in sources:
        obj = out / (src.stem + ("_py" if src.parent.name == "rulespy" else "") + ".o")
        p = subprocess.run(cc + flags + ["-c", str(src), "-o", str(obj)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode:
            target = cc[cc.index("-target") + 1] if "-target" in cc else "this machine"
            raise BuildError(f"{src.name} does not compile for {target}:\n{p.stdout[-4000:]}")
        objs.append(obj)
    return objs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    w = sub.add_parser("wheel", help="build a wheel for this Python (the default)")
    w.add_argument("--out", type=Path, default=DIST, help="folder for the wheel (default: vendor/durable-rules/dist)")
    w.add_argument("--force", action="store_true", help="build again even if the wheel is there")
    w.add_argument("--no-strict", dest="strict", action="store_false", help="without gcc 14's default errors")
    s = sub.add_parser("source", help="write the patched source tree into a new folder")
    s.add_argument("dest", type=Path)
    c = sub.add_parser("cross-check", help="compile with clang for Windows, macOS and Linux (pip install ziglang)")
    c.add_argument("--no-strict", dest="strict", action="store_false")
    c.add_argument("--unpatched", dest="patch", action="store_false", help="check the stock sdist (to see what the patch fixes)")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "source":
            print(source(a.dest))
        elif a.cmd == "cross-check":
            cross_check(a.strict, a.patch)
        else:
            wheel(getattr(a, "out", DIST), getattr(a, "force", False), getattr(a, "strict", True))
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

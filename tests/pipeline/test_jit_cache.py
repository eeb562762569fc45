"""numba code kept on disk: a second process loads what the first compiled, except copies whose
signature holds a compiled function (keyed by its address, so never found again: never written),
and a cache folder that fails costs the compile, never the call."""

import json
import subprocess
import sys
import textwrap

from helpers import REPO

PACKAGE = '''
import numba

@numba.njit
def add(a, b):
    return a + b

@numba.njit
def apply(dist, x):
    return dist(x, x)
'''

PROCESS = textwrap.dedent('''
    import json, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import fakepkg
    from llmclust.pipeline.jit_cache import cache_dir, keep_compiled
    switched = keep_compiled(["fakepkg"])
    if sys.argv[3] == "break":  # the folder turns into a file after the caches were made
        import shutil
        shutil.rmtree(cache_dir(), ignore_errors=True)
        open(cache_dir(), "w").close()
    again = keep_compiled(["fakepkg"])  # once per package and process
    fakepkg.add(1, 2)
    fakepkg.apply(fakepkg.add, 3)
    print(json.dumps({"switched": switched, "again": again,
                      "add_hits": sum(fakepkg.add.stats.cache_hits.values()),
                      "apply_hits": sum(fakepkg.apply.stats.cache_hits.values())}))
''')


def run_process(tmp_path, cache, mode="keep"):
    out = subprocess.run([sys.executable, "-c", PROCESS, str(tmp_path), str(REPO / "libs"), mode], check=True,
                         capture_output=True, text=True, env={"LLMCLUST_CACHE": str(cache), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_a_second_process_loads_the_compiled_code(tmp_path):
    (tmp_path / "fakepkg").mkdir()
    (tmp_path / "fakepkg" / "__init__.py").write_text(PACKAGE)
    cache = tmp_path / "cache"
    first, _ = run_process(tmp_path, cache)
    assert first == {"switched": 2, "again": 0, "add_hits": 0, "apply_hits": 0}
    assert list((cache / "numba").rglob("*.nbi")), "the compiled code was not written under $LLMCLUST_CACHE/numba"
    second, _ = run_process(tmp_path, cache)
    assert second["add_hits"] == 1  # loaded, not compiled
    assert second["apply_hits"] == 0  # its signature holds a compiled function: compiled again, never written
    assert not [p for p in (cache / "numba").rglob("*.nbc") if "apply" in p.name]


def test_a_cache_folder_that_fails_costs_the_compile_not_the_call(tmp_path):
    (tmp_path / "fakepkg").mkdir()
    (tmp_path / "fakepkg" / "__init__.py").write_text(PACKAGE)
    out, stderr = run_process(tmp_path, tmp_path / "cache", mode="break")
    assert out["add_hits"] == 0  # the calls ran (their results printed): compiled, not loaded
    assert "numba's code cache in" in stderr and "compiling instead" in stderr

"""numba code kept on disk: a second process loads what the first compiled, except functions that
take a compiled function (their copies are keyed by its address, so they are never cached)."""

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
    from llmclust.pipeline.jit_cache import keep_compiled
    switched = keep_compiled(["fakepkg"])
    again = keep_compiled(["fakepkg"])  # once per package and process
    fakepkg.add(1, 2)
    fakepkg.apply(fakepkg.add, 3)
    print(json.dumps({"switched": switched, "again": again,
                      "add_hits": sum(fakepkg.add.stats.cache_hits.values()),
                      "apply_hits": sum(fakepkg.apply.stats.cache_hits.values())}))
''')


def run_process(tmp_path, cache):
    out = subprocess.run([sys.executable, "-c", PROCESS, str(tmp_path), str(REPO / "libs")], check=True,
                         capture_output=True, text=True, env={"LLMCLUST_CACHE": str(cache), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_compiled_code(tmp_path):
    (tmp_path / "fakepkg").mkdir()
    (tmp_path / "fakepkg" / "__init__.py").write_text(PACKAGE)
    cache = tmp_path / "cache"
    first = run_process(tmp_path, cache)
    assert first == {"switched": 1, "again": 0, "add_hits": 0, "apply_hits": 0}
    assert list((cache / "numba").rglob("*.nbi")), "the compiled code was not written under $LLMCLUST_CACHE/numba"
    second = run_process(tmp_path, cache)
    assert second["add_hits"] == 1  # loaded, not compiled
    assert second["apply_hits"] == 0  # takes a compiled function: compiled again, never written
    assert not [p for p in (cache / "numba").rglob("*.nbi") if "apply" in p.name]

"""pyproject.toml against what the README, CI and the image install, and what the code calls."""

import re

import pytest
from helpers import REPO
from packaging.requirements import Requirement
from packaging.version import Version

# pyproject.toml: what the README, CI and the image install.
FAISS = re.compile(r"faiss-")  # faiss-cpu, faiss-gpu-cu12 ...: each installs the same `faiss` package
# sentence_transformers/sentence_transformer/model.py has SentenceTransformer.get_embedding_dimension
# (called by llmclust.pipeline.embedding) from tag v5.4.0 on; v5.3.0 has only get_sentence_embedding_dimension
SENTENCE_TRANSFORMERS_API = Version("5.4.0")


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+, as in CI and the image
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def requirements(extras: set[str]) -> list[Requirement]:
    """What ``pip install -e .[extras]`` asks for."""
    project = pyproject()["project"]
    return [Requirement(r) for r in project["dependencies"]] + [
        Requirement(r) for extra in sorted(extras) for r in project["optional-dependencies"][extra]]


def faiss_builds(extras: set[str]) -> set[str]:
    return {r.name for r in requirements(extras) if FAISS.match(r.name)}


def documented_installs() -> list[tuple[str, set[str]]]:
    """(file:line, extras) of every ``pip install -e .[extras]`` in the README, CI and the image."""
    installs = []
    for path in ("README.md", ".ci/run", "k8s/Dockerfile"):
        for number, line in enumerate((REPO / path).read_text().splitlines(), 1):
            for extras in re.findall(r"pip install [^&`]*?-e \"?\.(?:\[([\w,]*)\])?", line):
                installs.append((f"{path}:{number}", set(filter(None, extras.split(",")))))
    return installs


def test_faiss_builds_are_alternative_extras():
    extras = set(pyproject()["project"]["optional-dependencies"])
    assert faiss_builds(set()) == set() and faiss_builds(extras - {"cpu", "gpu"}) == set()
    assert faiss_builds({"cpu"}) == {"faiss-cpu"} and faiss_builds({"gpu"}) == {"faiss-gpu-cu12"}


@pytest.mark.parametrize("where, extras", documented_installs(), ids=[w for w, _ in documented_installs()])
def test_documented_installs_get_exactly_one_faiss_build(where, extras):
    assert extras <= set(pyproject()["project"]["optional-dependencies"]), f"{where}: unknown extra in {extras}"
    builds = faiss_builds(extras)
    assert len(builds) == 1, (f"{where} installs {sorted(builds) or 'no faiss'}: "
                              "install .[cpu] (or .[cpu,dev]) on CPU machines and .[gpu] on GPU machines")


def test_sentence_transformers_pin_has_the_api_the_code_calls():
    (pin,) = [r for r in requirements(set()) if r.name == "sentence-transformers"]
    assert all(not pin.specifier.contains(str(v)) for v in ("5.0.0", "5.3.0")) and pin.specifier.contains(
        str(SENTENCE_TRANSFORMERS_API)), f"{pin}: SentenceTransformer.get_embedding_dimension needs >= 5.4.0"

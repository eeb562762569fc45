import pytest
from llmclust.config import ConfigError, apply_overrides, fingerprint, from_dict
from llmclust.methods.job import JobConfig, load_job_config


def test_local_yaml_loads_and_overrides_apply():
    cfg = load_job_config("ray_configs/local.yaml", ["clustering.n_clusters=12", "embedding.batch_size=32"])
    assert cfg.clustering.n_clusters == 12
    assert cfg.embedding.batch_size == 32
    assert cfg.corpus.text_column == "text"


def test_exponent_without_a_dot_is_a_float():
    # YAML 1.1 reads 2e-4 as a string; a learning rate written that way must still work
    cfg = load_job_config("ray_configs/cotrain_local.yaml", ["cotrain.dpo.learning_rate=2e-4"])
    assert cfg.cotrain.dpo.learning_rate == pytest.approx(2e-4)
    with pytest.raises(ConfigError, match="learning_rate='fast': expected float"):
        load_job_config("ray_configs/cotrain_local.yaml", ["cotrain.dpo.learning_rate=fast"])


def test_unknown_key_names_the_key_and_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['clustering.n_cluster'\].*n_clusters"):
        from_dict(JobConfig, {"clustering": {"n_cluster": 3}})


def test_unknown_section_is_an_error():
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(JobConfig, {"clusterin": {}})


def test_wrong_type_names_key_value_and_expected_type():
    with pytest.raises(ConfigError, match=r"embedding.batch_size='big': expected int"):
        from_dict(JobConfig, {"embedding": {"batch_size": "big"}})
    with pytest.raises(ConfigError, match="expected int, got a boolean"):
        from_dict(JobConfig, {"clustering": {"max_iter": True}})
    with pytest.raises(ConfigError, match=r"clustering.n_clusters=True: expected int or str"):  # a number or auto
        from_dict(JobConfig, {"clustering": {"n_clusters": True}})


def test_bad_value_is_checked_before_work():
    with pytest.raises(ConfigError, match=r"clustering.n_clusters=1: expected an integer >= 2"):
        load_job_config(None, ["clustering.n_clusters=1"])
    with pytest.raises(ConfigError, match=r"corpus.duplicates='maybe': expected one of"):
        load_job_config(None, ["corpus.duplicates=maybe"])
    with pytest.raises(ConfigError, match="method='nope'"):
        load_job_config(None, ["method=nope"])


def test_list_values_are_typed():
    cfg = load_job_config(None, ["clustering.seeds=[3, 4]"])
    assert cfg.clustering.seeds == [3, 4]
    with pytest.raises(ConfigError, match=r"clustering.seeds\[1\]"):
        load_job_config(None, ["clustering.seeds=[3, x]"])


def test_malformed_override_and_missing_file():
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["n_clusters"])
    with pytest.raises(ConfigError, match="not found"):
        load_job_config("ray_configs/missing.yaml")


def test_fingerprint_is_stable_and_sensitive():
    a = load_job_config(None).clustering
    b = load_job_config(None, ["clustering.n_clusters=21"]).clustering
    assert fingerprint(a) == fingerprint(load_job_config(None).clustering)
    assert fingerprint(a) != fingerprint(b)


def test_extends_merges_the_base_section_by_section(tmp_path):
    (tmp_path / "base.yaml").write_text("method: baseline\nclustering:\n  n_clusters: 7\n  seeds: [0, 1]\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nmethod: lumi\nclustering:\n  n_clusters: 9\n")
    cfg = load_job_config(tmp_path / "child.yaml")
    assert (cfg.method, cfg.clustering.n_clusters, cfg.clustering.seeds) == ("lumi", 9, [0, 1])
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_job_config(tmp_path / "loop.yaml")


def test_method_configs_hold_only_their_own_section():
    import yaml

    base = load_job_config("ray_configs/local.yaml")
    for method in ("lumi", "clusterllm", "cotrain"):
        raw = yaml.safe_load(open(f"ray_configs/{method}_local.yaml"))
        assert set(raw) == {"extends", "method", "run", method}
        cfg = load_job_config(f"ray_configs/{method}_local.yaml")
        assert (cfg.method, cfg.corpus, cfg.embedding, cfg.llm) == (method, base.corpus, base.embedding, base.llm)


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("clustering:\n  n_clusters: [1, 2\n")
    with pytest.raises(ConfigError, match=r"(?s)bad.yaml: not valid YAML.*bad.yaml\", line \d+"):
        load_job_config(bad)


def test_loading_a_job_config_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from llmclust.methods.job import load_job_config; load_job_config('ray_configs/cotrain_local.yaml'); "
            "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_compare_baseline_is_a_checked_switch_outside_the_evaluation_fingerprint():
    on = load_job_config(None, ["evaluation.label_column=category"]).evaluation
    off = load_job_config(None, ["evaluation.label_column=category", "evaluation.compare_baseline=false"]).evaluation
    assert on.compare_baseline is True and off.compare_baseline is False
    # the evaluate stages' identity: switching the comparison off recomputes no stage
    assert fingerprint(on.identity) == fingerprint(off.identity)
    assert fingerprint(on.identity) == fingerprint({"label_column": "category", "labels_path": ""})
    with pytest.raises(ConfigError, match=r"evaluation.compare_baseline='sometimes': expected bool"):
        load_job_config(None, ["evaluation.compare_baseline=sometimes"])

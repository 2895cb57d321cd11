"""The plugin: its manifest, its installer, and its operator run immediately and delegated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.plugins as fop
import pytest
import yaml
from fiftyone.operators.delegated import DelegatedOperationService
from fiftyone.operators.executor import ExecutionContext

import sam3kit
from sam3kit.fiftyone import OPERATOR_URI, PLUGIN_NAME
from sam3kit.fiftyone.install import plugin_source
from sam3kit.fiftyone.operators import ApplySam3


@pytest.fixture
def params(tiny_checkpoint):
    return {"prompt": "person, car", "model": str(tiny_checkpoint), "device": "cpu", "score_threshold": 0.0}


def test_manifest_names_every_registered_operator_and_the_package_version():
    manifest = yaml.safe_load((plugin_source() / "fiftyone.yml").read_text())

    class Recorder:
        registered: list = []

        def register(self, cls):
            self.registered.append(cls().config.name)

    namespace: dict = {}
    exec((plugin_source() / "__init__.py").read_text(), namespace)  # as FiftyOne loads it: a lone file
    recorder = Recorder()
    namespace["register"](recorder)
    assert manifest["name"] == PLUGIN_NAME
    assert manifest["operators"] == recorder.registered == ["apply_sam3"]
    assert manifest["version"] == sam3kit.__version__


def test_loading_the_plugin_imports_neither_torch_nor_transformers(installed_plugin):
    code = (
        "import sys, fiftyone.operators as foo\n"
        f"assert {OPERATOR_URI!r} in [op.uri for op in foo.list_operators()]\n"
        "import sam3kit.fiftyone\n"
        "sam3kit.fiftyone.apply_sam3, sam3kit.fiftyone.Sam3Model\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"]


def test_installed_plugin_is_discovered_by_fiftyone(installed_plugin):
    assert installed_plugin == Path(fo.config.plugins_dir) / "sam3kit"
    assert PLUGIN_NAME in [p.name for p in fop.list_plugins()]
    assert OPERATOR_URI in [op.uri for op in foo.list_operators()]


def test_install_plugin_command_copies_or_links_the_plugin(tmp_path):
    run = [sys.executable, "-m", "sam3kit.fiftyone", "install-plugin", "--plugins-dir"]
    out = subprocess.run([*run, str(tmp_path / "a")], capture_output=True, text=True, check=True)
    copied = tmp_path / "a" / "sam3kit"
    assert str(copied) in out.stdout and OPERATOR_URI in out.stdout
    assert sorted(p.name for p in copied.iterdir()) == ["__init__.py", "fiftyone.yml"]
    assert (copied / "fiftyone.yml").read_text() == (plugin_source() / "fiftyone.yml").read_text()

    subprocess.run([*run, str(tmp_path / "b"), "--link"], check=True, capture_output=True)
    linked = tmp_path / "b" / "sam3kit"
    assert linked.is_symlink() and linked.resolve() == plugin_source().resolve()


def test_operator_runs_on_the_dataset_and_returns_a_summary(installed_plugin, dataset, params):
    result = foo.execute_operator(OPERATOR_URI, ctx=dict(dataset=dataset, params={**params, "batch_size": 2}))

    summary = result.result
    assert (summary["done"], summary["skipped"], summary["failed"]) == (5, 0, 0)
    assert summary["instances"] == dataset.count("sam3.detections") > 0
    assert set(dataset.distinct("sam3.detections.label")) <= {"person", "car"}
    requests = [r.to_json() for r in result.executor._requests]
    progress = [r["params"]["message"] for r in requests if r["operator_uri"] == "console_log"]
    assert progress == ["Progress: 0.4 - 2 of 5 samples", "Progress: 0.8 - 4 of 5 samples",
                        "Progress: 1.0 - 5 of 5 samples"]  # fmt: skip
    assert requests[-1]["operator_uri"] == "reload_dataset"


def test_operator_runs_on_the_selected_samples_only(installed_plugin, dataset, params):
    chosen = dataset.values("id")[1::2]
    ctx = dict(dataset=dataset, selected=chosen, params={**params, "view_target": "SELECTED_SAMPLES"})

    result = foo.execute_operator(OPERATOR_URI, ctx=ctx)

    assert result.result["total"] == 2
    assert dataset.exists("sam3").values("id") == chosen


def test_delegated_operation_runs_when_launched(installed_plugin, make_dataset, params):
    dataset = make_dataset(persistent=True)
    ctx = dict(dataset=dataset, params={**params, "label_field": "later", "output": "segmentation"})

    queued = foo.execute_operator(OPERATOR_URI, ctx=dict(ctx, request_delegation=True))

    assert queued.delegated
    assert not dataset.has_sample_field("later")  # queued, not run
    service = DelegatedOperationService()
    try:
        # what `fiftyone delegated launch` does, once
        (outcome,) = service.execute_queued_operations(operator=OPERATOR_URI, dataset_name=dataset.name)
        op = service.get(queued.result["id"])
        assert op.run_state == "completed", outcome.error
        assert op.result.result["done"] == 5 and op.result.result["label_field"] == "later"
        assert (op.status.progress, op.status.label) == (1.0, "5 of 5 samples")
        dataset.reload()
        assert dataset.count("later") == 5
        assert dataset.mask_targets["later"] == {1: "person", 2: "car"}
    finally:
        service.delete_operation(queued.result["id"])


def _form(dataset, **params):
    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params})
    return ApplySam3().resolve_input(ctx).type.properties


def test_form_offers_box_and_point_fields_and_refuses_a_foreign_label_field(dataset):
    dataset.set_values("gt", [fo.Detections()] * len(dataset))
    dataset.set_values("clicks", [fo.Keypoints()] * len(dataset))
    dataset.set_values("cls", [fo.Classification(label="x")] * len(dataset))

    form = _form(dataset, prompt="cat", label_field="gt")

    assert set(form["prompt_field"].type.values) == {"gt", "clicks"}
    assert form["label_field"].invalid and "'gt'" in form["label_field"].error_message
    assert not form["prompt"].invalid
    assert _form(dataset, label_field="new")["prompt"].invalid  # neither text nor prompt field
    assert not _form(dataset, prompt_field="clicks", label_field="new")["prompt"].invalid


def test_operator_refuses_to_clobber_a_field(installed_plugin, dataset, params):
    dataset.set_values("gt", [fo.Detections()] * len(dataset))
    with pytest.raises(foo.executor.ExecutionError, match="label_field"):
        foo.execute_operator(OPERATOR_URI, ctx=dict(dataset=dataset, params={**params, "label_field": "gt"}))
    assert dataset.count("gt.detections") == 0

"""dpgen2's training stage as dpgen2 builds it: its ``PrepRunDPTrain`` Steps template with its
own ``PrepDPTrain`` and ``RunDPTrain`` OPs, written as a dflow user writes it (``import
dflow``), run unchanged through ``hpcflow run --as-dflow``.

``python dpgen2_train.py`` runs it; ``python dpgen2_train.py reuse WF_ID`` runs it again
reusing the first run's prep step and first training slice by their keys, as
``dpgen2 resubmit`` does. Either prints one JSON line: the workflow, its phase and the
models it trained.
"""

import json
import sys
from pathlib import Path

from dflow import Step, Workflow, download_artifact, upload_artifact
from dpgen2.op import PrepDPTrain, RunDPTrain
from dpgen2.superop.prep_run_dp_train import PrepRunDPTrain
from dpgen2.utils.step_config import normalize as normalize_step_dict

REUSED_KEYS = ["iter-000000--prep-train", "iter-000000--run-train-0000"]


def data_system(path: Path) -> Path:
    """A DeePMD data system as RunDPTrain finds it (a directory with type.raw)."""
    (path / "set.000").mkdir(parents=True, exist_ok=True)
    (path / "type.raw").write_text("0\n")
    (path / "type_map.raw").write_text("H\n")
    return path


def train_step() -> Step:
    init_data = [data_system(Path("init/sys-0")), data_system(Path("init/sys-1"))]
    data_system(Path("iter-000000/sys-a"))
    template = {"model": {"descriptor": {"type": "se_e2_a"}, "fitting_net": {}},
                "learning_rate": {}, "loss": {},
                "training": {"training_data": {}, "numb_steps": 100}}
    steps = PrepRunDPTrain("prep-run-train", PrepDPTrain, RunDPTrain,
                           prep_config=normalize_step_dict({}),
                           run_config=normalize_step_dict({}))
    return Step("train-step", template=steps,
                parameters={"block_id": "iter-000000", "numb_models": 3,
                            "template_script": template,
                            "train_config": {"command": "dp"}},
                artifacts={"init_models": None,
                           "init_data": upload_artifact(init_data),
                           "iter_data": upload_artifact([Path("iter-000000")])})


def main() -> None:
    reuse = None
    if sys.argv[1:2] == ["reuse"]:
        reuse = Workflow(id=sys.argv[2]).query_step(key=REUSED_KEYS)
    wf = Workflow(name="dp-train")
    wf.add(train_step())
    wf.submit(reuse_step=reuse)
    wf.wait()
    step = wf.query_step(name="train-step")[0]
    out = Path(f"models-{wf.id}")
    download_artifact(step.outputs.artifacts["models"], path=out)
    models = {p.parent.name: json.loads(p.read_text())
              for p in sorted(out.rglob("frozen_model.pb"))}
    print(json.dumps({"workflow": wf.id, "phase": wf.query_status(), "models": models}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

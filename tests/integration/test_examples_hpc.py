"""The HPC examples (examples/hpc/) run through ``hpcflow run`` on the real Slurm."""

import json
import re
from pathlib import Path

from tests.conftest import EXAMPLES, integrity_ok, run_cli


def test_slurm_campaign_example(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    result = run_cli(["run", str(EXAMPLES / "hpc" / "slurm_campaign.py")], home, tmp_path)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "best energy below -12: True" in result.stdout
        assert "frames: 4000" in result.stdout
        wf_id = json.loads(run_cli(["list", "--json"], home, tmp_path).stdout)[0]["id"]
        packs = set(re.findall(rf" Name=(hpcflow-{wf_id}-\d+-\d+-pack) ",
                               Path(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"]).read_text()))
        assert len(packs) == 4  # 40 simulations, 10 to a job
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)

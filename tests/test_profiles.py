"""Machine profiles: TOML loading, validation errors naming file/machine/key, runners, resource merging."""
from __future__ import annotations

import os
import sys

import pytest

from autogenv2.errors import PlanError
from autogenv2.profiles import MachineProfile, load_profiles, merge_resources
from autogenv2.runners.base import Resources
from autogenv2.runners.local import LocalRunner
from autogenv2.runners.pbs import PbsRunner
from autogenv2.runners.slurm import SlurmRunner

CLUSTERS = """
[machines.cluster]
kind = "slurm"
max_queued = 40
python = "/home/me/venv/bin/python"
partition = "batch"
account = "proj.42"
walltime = "02:00:00"
cpus_per_task = 4
setup = ["module load gcc/12", "export OMP_NUM_THREADS=4"]
extra = ["--constraint=haswell"]

[machines.pbs]
kind = "pbs"
flavor = "torque"
max_queued = 5
partition = "workq"
memory = "8G"

[machines.local]
kind = "local"
max_queued = 1
"""


@pytest.fixture
def profile_file(tmp_path):
    path = tmp_path / "machines.toml"
    path.write_text(CLUSTERS)
    return path


def test_builtin_local_profile_needs_no_file():
    profiles = load_profiles()
    assert list(profiles) == ["local"] and load_profiles(None)["local"].kind == "local"
    runner = profiles["local"].make_runner()
    assert isinstance(runner, LocalRunner)
    assert runner.max_active == max(1, os.cpu_count() or 1) and runner.python == sys.executable


def test_profiles_from_toml_make_throttled_runners(profile_file):
    profiles = load_profiles(profile_file)
    assert sorted(profiles) == ["cluster", "local", "pbs"]
    cluster = profiles["cluster"]
    runner = cluster.make_runner()
    assert isinstance(runner, SlurmRunner) and runner.max_active == 40
    assert runner.python == "/home/me/venv/bin/python"
    assert cluster.resources.model_dump(exclude_unset=True) == {
        "cpus_per_task": 4, "walltime": "02:00:00", "partition": "batch", "account": "proj.42",
        "extra": ["--constraint=haswell"], "setup": ["module load gcc/12", "export OMP_NUM_THREADS=4"]}
    pbs = profiles["pbs"].make_runner()
    assert isinstance(pbs, PbsRunner) and (pbs.flavor, pbs.max_active) == ("torque", 5)
    assert profiles["pbs"].python == sys.executable
    assert profiles["local"].make_runner().max_active == 1  # the file may redefine "local"


def test_step_resources_win_field_by_field(profile_file):
    cluster = load_profiles(profile_file)["cluster"]
    step = Resources(walltime="00:10:00", tasks=8, launcher=["srun"])
    merged = cluster.resources_for(step)
    assert (merged.walltime, merged.tasks, merged.partition) == ("00:10:00", 8, "batch")
    assert merged.cpus_per_task == 4
    assert merged.launcher == ["srun"] and merged.setup == ["module load gcc/12", "export OMP_NUM_THREADS=4"]
    assert cluster.resources_for(None) == cluster.resources
    # a step that went through JSON (every field "set", lists empty) still keeps the profile's lists
    round_trip = Resources(**step.model_dump())
    assert cluster.resources_for(round_trip).setup == cluster.resources.setup
    assert merge_resources(Resources(), Resources(setup=["module load x"])).setup == ["module load x"]


@pytest.mark.parametrize("text, message", [
    ('[machines.c]\nkind = "slurm"\npartiton = "a"\n', r"\[machines.c\]: partiton: Extra inputs"),
    ('[machines.c]\nkind = "lsf"\n', r"\[machines.c\]: kind: unknown runner kind 'lsf'; known: local, slurm"),
    ('[machines.c]\nkind = "slurm"\nmax_queued = 0\n', r"max_queued: .*greater than or equal to 1"),
    ('[machines.c]\nkind = "slurm"\nnodes = "two"\n', r"\[machines.c\]: nodes: .*integer"),
    ('[machines.c]\nkind = "slurm"\npartition = "debug; rm -rf ~"\n', r"\[machines.c\]: resources.partition"),
    ('[machines.c]\nkind = "slurm"\nextra = ["--job-name=x"]\n', r"resources.extra '--job-name=x'"),
    ('[machines.c]\nkind = "pbs"\nqos = "high"\n', r"resources.qos 'high': PBS has no QOS"),
    ('[machines.c]\nkind = "slurm"\nflavor = "torque"\n', r"flavor is a PBS setting"),
    ('[machines.c]\nkind = "slurm"\nname = "d"\n', r"'name' is the table's own name"),
    ('[machines.c]\nmax_queued = 3\n', r"\[machines.c\]: kind: Field required"),
    ('[machine.c]\nkind = "slurm"\n', r"unknown top-level key 'machine'"),
    ('[machines.c\nkind = "slurm"\n', r"not valid TOML .*line 1"),
    ('[machines."../x"]\nkind = "local"\n', r"machine name '../x'"),
])
def test_bad_profiles_name_the_file_machine_and_key(tmp_path, text, message):
    path = tmp_path / "machines.toml"
    path.write_text(text)
    with pytest.raises(PlanError, match=message) as info:
        load_profiles(path)
    assert str(path) in str(info.value)


def test_missing_file_is_a_plan_error(tmp_path):
    with pytest.raises(PlanError, match="no such machine profile file"):
        load_profiles(tmp_path / "nope.toml")


def test_profile_round_trips_through_json(profile_file):
    cluster = load_profiles(profile_file)["cluster"]
    again = MachineProfile.model_validate_json(cluster.model_dump_json())
    assert again == cluster and again.make_runner().max_active == 40

import json
import subprocess
import sys

from trainers.infra.provenance import CPU_FLAGS, ROOT, command_line, git_commit, machine, provenance


def test_command_line_is_what_a_user_types_again_from_the_root():
    assert command_line(["/x/.venv/bin/gym-dream", "evaluate", "runs/a b", "--episodes", "5"]) == \
        "gym-dream evaluate 'runs/a b' --episodes 5"
    assert command_line([str(ROOT / "benchmarks" / "planet.py"), "--obs", "pixels"]) == "python benchmarks/planet.py --obs pixels"
    assert command_line(["/elsewhere/script.py"]) == "python /elsewhere/script.py"


def test_provenance_names_the_commit_the_machine_and_the_date(tmp_path):
    p = provenance("gym-dream list")
    assert set(p) == {"command", "commit", "machine", "date"} and p["command"] == "gym-dream list"
    assert p["date"].endswith("Z") and json.loads(json.dumps(p)) == p
    m = machine()
    assert set(m["flags"]) <= set(CPU_FLAGS) and m["cores"] >= 1 and m["threads"] >= 1 and m["torch"]
    assert git_commit(tmp_path) is None  # not a checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    git = ["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    sha = git_commit(tmp_path)
    assert sha and len(sha) == 40
    (tmp_path / "f").write_text("2")
    assert git_commit(tmp_path) == sha + "-dirty"


def test_a_script_records_its_own_command(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text("import json; from trainers.infra.provenance import provenance; print(json.dumps(provenance()))")
    r = subprocess.run([sys.executable, str(script), "--n", "3"], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(r.stdout)["command"] == f"python {script} --n 3"


def test_write_report_stamps_each_row_with_its_provenance(tmp_path):
    from trainers.evaluation.evaluate import write_report

    row = {"agent": "a", "dream": {"1.0": {"mean": 1.0, "std": 0.0, "episodes": 1}}, "real": {"mean": 1.0, "std": 0.0, "episodes": 1},
           "real_seeds": [0, 0]}
    _, js = write_report([row, {**row, "provenance": {"command": "kept"}}], tmp_path / "r", command="gym-dream evaluate a")
    first, second = json.loads(js.read_text())
    assert first["provenance"]["command"] == "gym-dream evaluate a" and set(first["provenance"]) == {"command", "commit", "machine", "date"}
    assert second["provenance"] == {"command": "kept"} and "provenance" not in row  # the caller's rows are not changed

"""Per-file mutation scores of the last ``mutmut run`` (``make mutate``), run from the repository root.

A mutant counts as killed when a test failed or timed out with it. Survivors listed in
``tests/mutation/EQUIVALENTS.md`` (by file, function and mutated line, so the list survives mutmut
renumbering its mutants) are left out of the score; every other survivor is printed with its change.
Exits 1 when a group is below its target, or when a listed equivalent no longer matches any survivor.
"""

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

EQUIVALENTS = Path(__file__).with_name("EQUIVALENTS.md")
DETECTED = {"killed", "timeout", "caught by type check"}
GROUPS = {  # name: (files, target %)
    "domain + verifier": (("bot/domain/", "bot/services/verification.py"), 95.0),
    "services (authorization, audit)": (("bot/services/",), 90.0),
}


@dataclass
class FileScore:
    path: str
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    survivors: list[tuple[str, str]] = field(default_factory=list)  # (function, mutated line)

    @property
    def score(self) -> float:
        counted = self.total - self.equivalent
        return 100.0 * self.killed / counted if counted else 100.0


def function_of(mutant: str) -> str:
    """``bot.services.verification.xǁVerifierǁforget__mutmut_2`` → ``Verifier.forget``."""
    name = mutant.rpartition(".")[2].rpartition("__mutmut_")[0]
    if name.startswith("xǁ"):
        return ".".join(name[2:].split("ǁ"))
    return name.removeprefix("x_")


def mutated_line(diff: str) -> str:
    """The mutant's changed lines, stripped: the added ones, or ``deleted: …`` when it only deletes."""
    body = diff.splitlines()[2:]  # past the --- and +++ headers
    added = [line[1:].strip() for line in body if line.startswith("+")]
    if added:
        return " / ".join(added)
    return "deleted: " + " / ".join(line[1:].strip() for line in body if line.startswith("-"))


def equivalents() -> set[tuple[str, str, str]]:
    """(file, function, mutated line) of each row of EQUIVALENTS.md's tables."""
    rows = set()
    for line in EQUIVALENTS.read_text().splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) >= 4 and cells[0].startswith("`"):
            rows.add(tuple(c.strip("`").strip() for c in cells[:3]))  # type: ignore[arg-type]
    return rows


def main() -> int:
    listed = equivalents()
    matched: set[tuple[str, str, str]] = set()
    scores: list[FileScore] = []
    for meta in sorted(Path("mutants/bot").rglob("*.py.meta")):
        path = str(meta.relative_to("mutants"))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        score = FileScore(path, total=len(codes))
        for mutant, code in sorted(codes.items()):
            status = status_by_exit_code[code]
            if status in DETECTED:
                score.killed += 1
                continue
            row = (Path(path).name, function_of(mutant), mutated_line(get_diff_for_mutant(mutant, path=path)))
            if status == "survived" and row in listed:
                score.equivalent += 1
                matched.add(row)
            else:
                score.survivors.append((f"{row[1]} [{status}]", row[2]))
        scores.append(score)

    print(f"{'file':40} {'mutants':>7} {'killed':>6} {'equiv.':>6} {'left':>5} {'score':>7}")
    for s in scores:
        print(f"{s.path:40} {s.total:7} {s.killed:6} {s.equivalent:6} {len(s.survivors):5} {s.score:6.1f}%")
    failed = False
    for group, (prefixes, target) in GROUPS.items():
        members = [s for s in scores if s.path.startswith(prefixes)]
        if group.startswith("services"):  # the verifier is scored with the domain
            members = [s for s in members if s.path != "bot/services/verification.py"]
        killed = sum(s.killed for s in members)
        counted = sum(s.total - s.equivalent for s in members)
        pct = 100.0 * killed / counted if counted else 100.0
        verdict = "met" if pct >= target else "NOT MET"
        failed |= pct < target
        print(f"{group}: {killed}/{counted} non-equivalent mutants killed = {pct:.1f}% (target {target:.0f}%: {verdict})")
    left = [(s.path, f, line) for s in scores for f, line in s.survivors]
    if left:
        print("\nSurvivors not listed in tests/mutation/EQUIVALENTS.md:")
        for path, function, line in left:
            print(f"  {path} {function}: {line}")
    stale = sorted(listed - matched)
    if stale:
        failed = True
        print("\nListed as equivalent but no such survivor (update EQUIVALENTS.md):")
        for row in stale:
            print("  " + " | ".join(row))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

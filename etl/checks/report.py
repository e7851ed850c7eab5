"""Check reports: what each expectation saw, as JSON for machines and Markdown for people."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional


@dataclass
class ExpectationOutcome:
    """The result of one expectation on one table."""

    table: str
    expectation: str
    success: bool
    observed: Any = None
    unexpected_count: Optional[int] = None
    unexpected_percent: Optional[float] = None
    sample: list[Any] = field(default_factory=list)
    error: Optional[str] = None

    def line(self) -> str:
        mark = "PASS" if self.success else "FAIL"
        parts = [f"{mark}  {self.table}: {self.expectation}"]
        if self.observed is not None:
            parts.append(f"observed={_short(self.observed)}")
        if self.unexpected_count:
            pct = f" ({self.unexpected_percent:.3g}%)" if self.unexpected_percent is not None else ""
            parts.append(f"unexpected={self.unexpected_count}{pct}")
        if self.sample and not self.success:
            what = "rows" if isinstance(self.sample[0], dict) else "values"
            parts.append(f"sample bad {what}={_short(self.sample)}")
        if self.error:
            parts.append(f"error={self.error}")
        return "  ".join(parts)


@dataclass
class CheckReport:
    """All expectation outcomes of one stage of one run, plus free-form notes (counts, warnings)."""

    run_id: str
    stage: str
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def to_json(self) -> str:
        return json.dumps({"run_id": self.run_id, "stage": self.stage, "success": self.success,
                           "check_seconds": round(self.seconds, 3), "notes": self.notes,
                           "outcomes": [asdict(o) for o in self.outcomes]}, indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> "CheckReport":
        """The report `to_json` wrote (the derived `success` field is recomputed, not read)."""
        d = json.loads(text)
        missing = [k for k in ("run_id", "stage", "outcomes") if k not in d]
        if missing:
            raise ValueError(f"not a grec check report: keys {missing} missing (found {sorted(d)})")
        return cls(run_id=d["run_id"], stage=d["stage"], outcomes=[ExpectationOutcome(**o) for o in d["outcomes"]],
                   notes=d.get("notes", {}), seconds=float(d.get("check_seconds", 0.0)))

    def to_markdown(self) -> str:
        status = "PASSED" if self.success else f"FAILED ({len(self.failures)} of {len(self.outcomes)} expectations)"
        lines = [f"# grec check report: run {self.run_id}, stage {self.stage}", "", f"**{status}**, "
                 f"{len(self.outcomes)} expectations, {self.seconds:.1f} s", ""]
        if self.failures:
            lines += ["## Failed", ""] + [f"- {o.line()}" for o in self.failures] + [""]
        if self.notes:
            lines += ["## Notes", ""] + [f"- {k}: {_short(v, 400)}" for k, v in self.notes.items()] + [""]
        lines += ["## All expectations", ""] + [f"- {o.line()}" for o in self.outcomes]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """A few lines for the console: the failures, or one line when all passed."""
        if self.success:
            return f"checks passed: {len(self.outcomes)} expectations ({self.seconds:.1f} s)"
        return "\n".join([f"checks FAILED: {len(self.failures)} of {len(self.outcomes)} expectations"]
                         + [f"  - {o.line()}" for o in self.failures])


def _short(v: Any, n: int = 200) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= n else s[: n - 3] + "..."

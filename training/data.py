"""Telco Customer Churn data: the layout, a validating loader, and a seeded generator.

The layout is IBM's public "Telco Customer Churn" sample: one row per customer, columns in
``COLUMNS`` order. ``load_csv`` reads that layout and refuses invalid data, reporting every
problem at once with its CSV line number. ``generate`` writes the same layout synthetically,
with each row's true churn probability, and a ``drift`` knob (a price rise: more
month-to-month customers, higher charges, more price-sensitive churn).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ID, TARGET = "customerID", "Churn"
YES_NO = ("Yes", "No")
SERVICE_VALUES = ("Yes", "No", "No internet service")
OPTIONAL_SERVICES = ("OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport",
                     "StreamingTV", "StreamingMovies")
CATEGORIES: dict[str, tuple[str, ...]] = {
    "gender": ("Female", "Male"),
    "Partner": YES_NO,
    "Dependents": YES_NO,
    "PhoneService": YES_NO,
    "MultipleLines": ("Yes", "No", "No phone service"),
    "InternetService": ("DSL", "Fiber optic", "No"),
    **{name: SERVICE_VALUES for name in OPTIONAL_SERVICES},
    "Contract": ("Month-to-month", "One year", "Two year"),
    "PaperlessBilling": YES_NO,
    "PaymentMethod": ("Electronic check", "Mailed check", "Bank transfer (automatic)",
                      "Credit card (automatic)"),
}
COLUMNS = (ID, "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
           "MultipleLines", "InternetService", *OPTIONAL_SERVICES, "Contract",
           "PaperlessBilling", "PaymentMethod", "MonthlyCharges", "TotalCharges", TARGET)
FEATURES = tuple(c for c in COLUMNS if c not in (TARGET,))
TENURE_RANGE = (0, 72)
CHARGES_RANGE = (18.25, 118.75)
MAX_CHARGE = 1e9  # a charge above this is a unit or parsing error, not a customer
# Float for every number: the model's signature then admits missing values (NaN).
NUMERIC = ("SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges")
OPTIONAL_COLUMNS = ("TotalCharges",)  # blank for customers in their first month


@dataclass(frozen=True)
class Problem:
    line: int | None  # CSV line (header is line 1); None for file-level problems
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}{', ' + self.column if self.column else ''}: {self.message}"


class DataError(ValueError):
    """The data does not follow the layout; ``problems`` lists every defect found."""

    def __init__(self, problems: list[Problem], source: str = "data") -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{source}: {len(problems)} problem(s)\n{shown}{more}")


def _numbers(raw: pd.DataFrame) -> dict[str, pd.Series]:
    """The numeric columns parsed once (unparseable and blank values are NaN)."""
    return {c: _to_float(raw[c]) for c in NUMERIC}


def _to_float(column: pd.Series) -> pd.Series:
    """Strings to float64, blanks and junk to NaN. Arrow's cast is ~10x faster than
    ``pd.to_numeric``; it refuses the whole column on one bad value, then pandas decides."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.dtype.kind == "f":
        return column
    text = pc.utf8_trim_whitespace(pa.array(column.astype(str), type=pa.string()))
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    try:
        values = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(column, errors="coerce").astype("float64")
    return pd.Series(values.to_numpy(zero_copy_only=False), index=column.index,
                     dtype="float64")


def check(raw: pd.DataFrame, *, require_target: bool = True,
          first_line: int = 2) -> tuple[list[Problem], pd.DataFrame | None]:
    """Problems and, when the columns are there, the typed frame (numbers parsed once)."""
    if any(c not in raw.columns for c in (COLUMNS if require_target else FEATURES)):
        return validate(raw, require_target=require_target, first_line=first_line), None
    numbers = _numbers(raw)
    problems = validate(raw, require_target=require_target, first_line=first_line,
                        numbers=numbers)
    return problems, to_typed(raw, numbers)


def validate(raw: pd.DataFrame, *, require_target: bool = True, first_line: int = 2,
             numbers: dict[str, pd.Series] | None = None) -> list[Problem]:
    """Every problem in ``raw`` (all columns as strings, as read from CSV)."""
    problems: list[Problem] = []
    needed = COLUMNS if require_target else FEATURES
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        return [Problem(None, c, "missing column") for c in missing]
    lines = np.arange(first_line, first_line + len(raw))
    numbers = numbers if numbers is not None else _numbers(raw)

    def report(mask, column, message):
        for line in lines[np.asarray(mask)]:
            problems.append(Problem(int(line), column, message(int(line))))

    for column, allowed in CATEGORIES.items():
        values = raw[column]
        bad = ~values.isin(allowed)
        report(bad, column, lambda ln, v=values, c=column, a=allowed:
               f"unknown category {v.iloc[ln - first_line]!r} (expected one of "
               f"{', '.join(a)})")
    if require_target:
        bad = ~raw[TARGET].isin(YES_NO)
        report(bad, TARGET, lambda ln: f"unknown value {raw[TARGET].iloc[ln - first_line]!r} "
                                       "(expected Yes or No)")
    senior = raw["SeniorCitizen"]
    report(~senior.isin(("0", "1")), "SeniorCitizen",
           lambda ln: f"expected 0 or 1, got {senior.iloc[ln - first_line]!r}")
    tenure = numbers["tenure"]
    infinite = {c: np.isinf(numbers[c]) for c in ("tenure", "MonthlyCharges", "TotalCharges")}
    for column, mask in infinite.items():  # inf, -inf, 1e999: parsed, but not a number
        report(mask, column, lambda ln, c=column:
               f"{raw[c].iloc[ln - first_line].strip()!r} is not a finite number")
    bad_tenure = (~infinite["tenure"] & (tenure.isna() | (tenure % 1 != 0)
                                         | ~tenure.between(*TENURE_RANGE)))
    report(bad_tenure, "tenure", lambda ln: f"expected whole months {TENURE_RANGE[0]}-"
                                            f"{TENURE_RANGE[1]}, got "
                                            f"{raw['tenure'].iloc[ln - first_line]!r}")
    for column in ("MonthlyCharges", "TotalCharges"):
        report(~infinite[column] & (numbers[column] > MAX_CHARGE), column, lambda ln, c=column:
               f"{raw[c].iloc[ln - first_line].strip()!r} is beyond the bound for charges "
               f"({MAX_CHARGE:.0e})")
    monthly = numbers["MonthlyCharges"]
    report(~infinite["MonthlyCharges"] & (monthly.isna() | (monthly <= 0)), "MonthlyCharges",
           lambda ln: f"bad number {raw['MonthlyCharges'].iloc[ln - first_line]!r}")
    total_raw = raw["TotalCharges"].str.strip()
    total = numbers["TotalCharges"]
    blank = total_raw == ""
    report(blank & (tenure != 0) & ~infinite["tenure"], "TotalCharges",
           lambda ln: "blank, but tenure is not 0")
    report(~blank & ~infinite["TotalCharges"] & (total.isna() | (total < 0)), "TotalCharges",
           lambda ln: f"bad number {raw['TotalCharges'].iloc[ln - first_line]!r}")
    ids = raw[ID].str.strip()
    report(ids == "", ID, lambda ln: "empty customerID")
    dup = ids.duplicated(keep="first") & (ids != "")
    if dup.any():
        first_seen = {v: i for i, v in reversed(list(enumerate(ids)))}

        def duplicate(ln: int) -> str:
            value = ids.iloc[ln - first_line]
            return (f"duplicate customerID {value!r} "
                    f"(first on line {first_seen[value] + first_line})")

        report(dup, ID, duplicate)
    problems.sort(key=lambda p: (p.line or 0, COLUMNS.index(p.column) if p.column in COLUMNS
                                 else -1))
    return problems


def to_typed(raw: pd.DataFrame, numbers: dict[str, pd.Series] | None = None) -> pd.DataFrame:
    """Validated strings -> model input: floats for numbers (blank TotalCharges is NaN)."""
    df = raw[[c for c in COLUMNS if c in raw.columns]].copy()
    for column, values in (numbers if numbers is not None else _numbers(raw)).items():
        df[column] = values
    return df


def read_raw(path: str | Path, **kwargs) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, **kwargs)


def load_csv(path: str | Path, *, require_target: bool = True) -> pd.DataFrame:
    """Read a CSV in the layout; raise ``DataError`` listing every problem."""
    raw = read_raw(path)
    problems = validate(raw, require_target=require_target)
    if problems:
        raise DataError(problems, str(path))
    return to_typed(raw)


def labels(df: pd.DataFrame) -> np.ndarray:
    return (df[TARGET] == "Yes").to_numpy(dtype=np.int8)


# --- synthetic generator ----------------------------------------------------------------

_INTERCEPT = -0.59  # tuned so that about 26.5 % churn at drift 0 (tests/unit/training)


def generate(n: int, seed: int = 0, drift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` customers in the layout and their true churn probabilities.

    ``drift`` in [0, 1]: 0 is the reference population; 1 is after a price rise (charges up
    ~15 %, more month-to-month contracts and electronic checks, churn more price sensitive).
    """
    rng = np.random.default_rng(seed)
    senior = rng.random(n) < 0.16
    partner = rng.random(n) < 0.48
    dependents = rng.random(n) < np.where(partner, 0.5, 0.12)
    kind = rng.random(n)
    tenure = np.where(kind < 0.33, rng.integers(1, 13, n),
                      np.where(kind < 0.8, rng.integers(0, 73, n), rng.integers(55, 73, n)))
    tenure[rng.random(n) < 0.003] = 0
    p_two = np.clip(0.05 + tenure / 100 - 0.15 * drift, 0.02, 0.9)
    p_one = np.clip(0.12 + tenure / 300 - 0.05 * drift, 0.05, 0.5)
    u = rng.random(n)
    contract = np.where(u < p_two, "Two year",
                        np.where(u < p_two + p_one, "One year", "Month-to-month"))
    phone = rng.random(n) < 0.9
    multiple = np.where(~phone, "No phone service",
                        np.where(rng.random(n) < 0.45, "Yes", "No"))
    internet = rng.choice(["DSL", "Fiber optic", "No"], n, p=[0.34, 0.44, 0.22])
    has_net = internet != "No"
    services = {}
    for name, p in zip(OPTIONAL_SERVICES, (0.35, 0.42, 0.42, 0.36, 0.48, 0.48), strict=True):
        yes = rng.random(n) < p
        services[name] = np.where(~has_net, "No internet service", np.where(yes, "Yes", "No"))
    paperless = rng.random(n) < 0.59
    pay_p = np.array([0.34 + 0.1 * drift, 0.23 - 0.04 * drift, 0.22 - 0.03 * drift,
                      0.21 - 0.03 * drift])
    payment = rng.choice(CATEGORIES["PaymentMethod"], n, p=pay_p / pay_p.sum())
    n_stream = sum((services[s] == "Yes").astype(int) for s in ("StreamingTV", "StreamingMovies"))
    n_other = sum((services[s] == "Yes").astype(int) for s in OPTIONAL_SERVICES[:4])
    monthly = (np.where(phone, 20.0, 0.0) + np.where(multiple == "Yes", 5.0, 0.0)
               + np.select([internet == "DSL", internet == "Fiber optic"], [25.0, 50.0], 0.0)
               + 9.5 * n_stream + 4.5 * n_other + rng.normal(0, 2.5, n))
    monthly = np.where(~has_net & ~phone, 20.0, monthly) * (1 + 0.15 * drift)
    monthly = np.round(np.clip(monthly, *CHARGES_RANGE), 2)
    total = tenure * monthly * rng.normal(1.0, 0.03, n)
    total_text = np.where(tenure == 0, " ", np.char.mod("%.2f", np.maximum(total, 0)))

    logit = (_INTERCEPT
             + 1.35 * (contract == "Month-to-month") - 1.4 * (contract == "Two year")
             + 0.75 * (internet == "Fiber optic") - 0.6 * (internet == "No")
             + 0.55 * (payment == "Electronic check")
             - 0.9 * np.log1p(tenure) / np.log1p(72) * 2.0
             + 0.45 * senior - 0.25 * partner - 0.2 * dependents
             - 0.5 * (services["OnlineSecurity"] == "Yes")
             - 0.45 * (services["TechSupport"] == "Yes")
             + 0.3 * paperless
             + (0.012 + 0.02 * drift) * (monthly - 65))
    prob = 1 / (1 + np.exp(-logit))
    churn = rng.random(n) < prob
    letters = rng.integers(65, 91, (n, 5), dtype=np.uint8).view("S5").ravel().astype(str)
    numbers = np.char.zfill(np.arange(1, n + 1).astype(str), max(4, len(str(n))))
    ids = np.char.add(np.char.add(numbers, "-"), letters)
    df = pd.DataFrame({
        ID: ids, "gender": rng.choice(["Female", "Male"], n),
        "SeniorCitizen": senior.astype(int).astype(str), "Partner": _yn(partner),
        "Dependents": _yn(dependents), "tenure": tenure.astype(str),
        "PhoneService": _yn(phone), "MultipleLines": multiple, "InternetService": internet,
        **services, "Contract": contract, "PaperlessBilling": _yn(paperless),
        "PaymentMethod": payment, "MonthlyCharges": np.char.mod("%.2f", monthly),
        "TotalCharges": total_text, TARGET: _yn(churn),
    })
    return df[list(COLUMNS)], prob


def _yn(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, "Yes", "No")


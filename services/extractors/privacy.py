"""What doseflow keeps about people, applied once to every report an extractor makes (and to
the Toshiba builder's study headers): the age rounded (DOSEFLOW_AGE_PRECISION_YEARS), staff
names and the accession number kept, hashed with the keyed pseudonym or dropped
(DOSEFLOW_STAFF_NAMES, DOSEFLOW_ACCESSION_NUMBER). Pure; applying it twice changes nothing.
"""
from __future__ import annotations

import math
import re
from typing import Optional

from pydantic import BaseModel

# Fields that name a member of staff, wherever they are in a report (study, CT dose check).
STAFF_NAME_FIELDS = ("operator_name", "performing_physician_name", "referring_physician_name",
                     "alert_person_name", "notification_person_name")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def rounded_age(age: Optional[float], precision: str = "0.1") -> Optional[float]:
    """An age in years to a tenth (the precision the reference values use; the birth date is then
    known to ±18 days at best), or floored to whole years ("1")."""
    if age is None:
        return None
    if precision == "1":
        return float(math.floor(age + 1e-9))
    return round(age, 1)


def _pseudonym(value: Optional[str], how: str, key: Optional[bytes]) -> Optional[str]:
    from services.extractors.common import keyed_hash

    if value is None or how == "keep":
        return value
    if how == "drop" or not key:
        return None  # hashing without a key would be a reversible dictionary lookup
    if _DIGEST.fullmatch(value):
        return value  # hashed already (a Toshiba study header read back from its built RDSR)
    return keyed_hash(key, value)


def protect(model: BaseModel, options) -> None:
    """Apply the options' privacy settings to `model` (a DoseReport or one of its parts), in place."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            protect(value, options)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    protect(item, options)
        elif name == "age_years":
            setattr(model, name, rounded_age(value, options.age_precision_years))
        elif name in STAFF_NAME_FIELDS:
            setattr(model, name, _pseudonym(value, options.staff_names, options.patient_hash_key))
        elif name == "accession_number":
            setattr(model, name, _pseudonym(value, options.accession_number, options.patient_hash_key))

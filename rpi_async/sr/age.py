"""Subject Age (TID 1007, (121033, DCM)): the patient's age at the observation date.

The row's units are those of CID 7456 (Units of Measure for Age). The age is given in
whole years, and for a patient under one year in whole months, and under one month in
whole days, as DICOM Patient's Age (AS) does for the young (PS3.5 Table 6.2-1), so that an
infant's age is not rendered as 0 years.
"""

from __future__ import annotations

import datetime

from rpi_async.dicom.codes import Code
from rpi_async.sr.concepts import DAYS, MONTHS, YEARS


def subject_age(birth_date: str, on: datetime.date) -> tuple[float, Code] | None:
    """(age, its CID 7456 unit) on ``on`` for a DA birth date; None if unknown or later."""
    if len(birth_date) != 8 or not birth_date.isdigit():
        return None
    try:
        born = datetime.date(int(birth_date[:4]), int(birth_date[4:6]), int(birth_date[6:]))
    except ValueError:
        return None
    if born > on:
        return None
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    if years >= 1:
        return float(years), YEARS
    months = (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)
    if months >= 1:
        return float(months), MONTHS
    return float((on - born).days), DAYS

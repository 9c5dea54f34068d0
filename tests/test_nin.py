"""National identity numbers: fødselsnummer and D-number, both check digits, the 2032 rule."""

from datetime import date

import pytest

from app.people.nin import InvalidNin, NinKind, birth_date_of, is_valid_nin, make_nin, parse_nin


@pytest.mark.parametrize(
    "value",
    [
        "02016126007",  # classic fødselsnummer (matematikk.org's worked example)
        "020161 26007",  # spaces are ignored
        "02013299997",  # Skatteetaten's 2032 example: remainder 0
        "30108299920",  # 2032 example, person 1
        "30108299939",  # 2032 example, person 2: remainder 1 (invalid before 2032)
    ],
)
def test_it_accepts_valid_fodselsnummer(value):
    nin = parse_nin(value)
    assert nin.kind is NinKind.FNR
    assert nin.value == value.replace(" ", "")


def test_it_accepts_a_d_number():
    value = make_nin(date(1990, 4, 12), 123, dnr=True)
    assert value and value.startswith("52")
    nin = parse_nin(value)
    assert nin.kind is NinKind.DNR
    assert nin.system == "urn:oid:2.16.578.1.12.4.1.4.2"
    assert birth_date_of(nin) == date(1990, 4, 12)


def test_the_2032_rule_allows_first_check_digit_remainders_up_to_3_only():
    head = "301082999"
    weights = (3, 7, 6, 1, 8, 9, 4, 5, 2)
    s = sum(w * int(d) for w, d in zip(weights, head, strict=True))
    accepted = []
    for k1 in range(10):
        digits = [int(d) for d in head] + [k1]
        k2 = (11 - sum(w * d for w, d in zip((5, 4, 3, 2, 7, 6, 5, 4, 3, 2), digits, strict=True)) % 11) % 11
        if k2 == 10:
            continue
        if is_valid_nin(f"{head}{k1}{k2}"):
            accepted.append((s + k1) % 11)
    assert accepted and set(accepted) <= {0, 1, 2, 3}
    assert len(accepted) >= 3  # several first check digits are valid, not only remainder 0


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "empty"),
        ("0201612600", "length"),
        ("020161260070", "length"),
        ("02016126008", "checksum"),  # second check digit wrong
        ("02016126097", "checksum"),  # first check digit wrong
        ("0201612600a", "digits"),
        ("٠٢٠١٦١٢٦٠٠٧", "digits"),  # Arabic-Indic digits: not ASCII
        ("０２０１６１２６００７", "digits"),  # full-width digits
        ("02-01-61-26007", "digits"),
        ("32016126007", "date"),  # day 32
        ("02136126007", "date"),  # month 13
        ("30026126007", "date"),  # 30 February never exists
    ],
)
def test_it_rejects_invalid_numbers_with_a_reason(app, value, code):
    with pytest.raises(InvalidNin) as error:
        parse_nin(value)
    assert error.value.code == code
    assert str(error.value.message)  # a message a person can act on


def test_29_february_is_valid_only_when_some_century_has_a_leap_year():
    leap = next(v for i in range(100, 200) if (v := make_nin(date(1984, 2, 29), i)))
    assert is_valid_nin(leap)
    # 29.02.83: 1883, 1983 and 2083 are no leap years (2000 would be, but yy=83 never means 2000)
    assert not is_valid_nin("29028312345")


def test_synthetic_numbers_are_accepted_only_when_allowed():
    value = make_nin(date(1985, 10, 20), 123, synthetic=True) or make_nin(date(1985, 10, 20), 124, synthetic=True)
    assert value and value[2:4] == "90"
    with pytest.raises(InvalidNin) as error:
        parse_nin(value)
    assert error.value.code == "synthetic"
    nin = parse_nin(value, allow_synthetic=True)
    assert nin.synthetic
    assert birth_date_of(nin) == date(1985, 10, 20)


@pytest.mark.parametrize(
    ("individual", "year", "expected"),
    [(123, 1985, 1985), (600, 1875, 1875), (600, 2010, 2010), (950, 1950, 1950)],
)
def test_birth_date_follows_the_individual_number_century_rules(individual, year, expected):
    value = None
    while value is None:
        value = make_nin(date(year, 6, 15), individual)
        individual += 1
    assert birth_date_of(parse_nin(value)).year == expected

"""Twilio's webhook signature, checked against the worked example in Twilio's security docs."""

from courier.receipts import signature_valid, twilio_signature

URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_twilio_documented_example():
    assert twilio_signature("12345", URL, PARAMS) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_any_change_breaks_the_signature():
    good = twilio_signature("12345", URL, PARAMS)
    assert signature_valid("12345", URL, PARAMS, good)
    assert not signature_valid("12345", URL, {**PARAMS, "Digits": "9999"}, good)
    assert not signature_valid("12345", URL + "&x=1", PARAMS, good)
    assert not signature_valid("54321", URL, PARAMS, good)
    assert not signature_valid("12345", URL, PARAMS, "")

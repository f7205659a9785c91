"""The only code that knows Twilio: signatures, TwiML, message segments, the REST sender."""

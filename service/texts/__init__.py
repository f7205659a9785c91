"""The SMS line: keywords, conversations and the /twilio/sms webhooks."""

"""Second Opinion Line: a Twilio voice menu and SMS line for a cancer center's patients."""

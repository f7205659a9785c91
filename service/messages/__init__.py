"""The message log: every text the line received or sent, and Twilio's reports on them
(`records`). A leaf: the text line and the outbound sender both write to it, and it uses
neither."""

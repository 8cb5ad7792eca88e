"""SMS text encoding (GSM-7 / UCS-2 segments) and phone numbers (E.164)."""

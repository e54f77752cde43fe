"""Money limits: how much a user may send per payment, per day and per night."""

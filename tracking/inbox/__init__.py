"""2. The inbox: stored events wait for a worker; ``dispatch`` sends them, ``sweep`` re-sends what a
lost task left behind and ``expiry`` ends parked events that waited too long."""

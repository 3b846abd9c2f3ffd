"""The policyholder's own page (``/me``): what it reads that no other route gives a person about themselves."""

"""SMTP bridge of Pli (issue "SMTP bridge"): MX, submission and outbound relay, on aiosmtpd.

Not built yet; ``pli serve`` starts no SMTP front until it is.
"""

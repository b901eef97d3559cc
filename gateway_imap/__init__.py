"""IMAP4rev1/IMAP4rev2 front of Pli (issue "IMAP"), protocol apart from storage.

Not built yet; ``pli serve`` starts no IMAP front until it is.
"""

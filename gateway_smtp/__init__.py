"""SMTP bridge of Pli on aiosmtpd: the MX for peer operators (``mx``), submission for mail
clients (``submission``, 587/465), and the outbound relay (``relay*``).

``server.SmtpFronts`` starts and stops the listeners; ``docs/smtp.md`` is the user's guide.
"""

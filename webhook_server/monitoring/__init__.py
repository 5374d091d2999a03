"""Monitoring after promotion: the inference log's batches in the store (``batches``), outcomes
joined to the predictions they judge (``labels``), realised quality per version and period
against the figures recorded at promotion (``realised``, ``report``), the decay rule
(``rule``), the scheduled monitoring job (``job``) and trends as inline SVG (``svg``)."""

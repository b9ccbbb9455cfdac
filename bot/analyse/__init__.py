"""Analyse: deterministic, model-free signals from the gathered evidence (see `analyser`).

``vocabulary`` and ``weights`` hold the words and the tuned numbers; ``metrics``, ``logs``,
``changes`` and ``runbooks`` read one kind of evidence each; ``hypotheses`` scores and ranks
causes; ``analyser.analyse`` puts them together.
"""

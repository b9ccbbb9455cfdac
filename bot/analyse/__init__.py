"""Analyse: deterministic, model-free signals from the gathered evidence (see `analyser`).

``vocabulary`` and ``weights`` hold the words and the tuned numbers; ``metrics``, ``logs``,
``changes`` (deploys, config changes, batch jobs and vendor status pages) and ``runbooks`` read
one kind of evidence each; ``relevance`` weighs what a change touched against the symptom;
``hypotheses`` scores and ranks causes, each with its reasons, and says which suspects were set
aside and why; ``analyser.analyse`` puts them together.
"""

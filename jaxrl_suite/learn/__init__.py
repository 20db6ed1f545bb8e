"""Learning pieces shared by the algorithms (imports only ``jaxrl_suite.env``).

- ``networks``: MLPs, actor-critics, Q-ensembles, distributions.
- ``advantages``: GAE, n-step returns (scalar or one per objective).
- ``buffers``: the replay buffer and its single-step ``Transition``.
- ``experience``: an off-policy learner's env interaction into the replay buffer.
- ``minibatches``: a rollout shuffled into minibatches (over transitions, or over envs).
- ``preferences``: multi-objective preference weights (``scalarize``, ``min_by_preference``).
- ``optim``: optax's convention (``adam``, ``resolve_optimizer``, ``apply_gradient``).
- ``objectives``: the on-policy objective contract (``ObjectiveInputs``, ``clipped_surrogate``).
- ``level_sampler``, ``level_scores``: PLR's level buffer and its scores, for UED.
"""

"""The course: what the lessons need that the toolchain does not.

The from-scratch numpy the lessons build step by step (``gd``, ``nn_numpy``, ``conv``,
``sequences``), their figures and sliders (``viz``, ``viz_models``, ``compress_plots``,
``widgets``), the checks after each exercise (``checks``), the claims a lesson's text makes about
a training result (``claims``), and the lessons as files (``lessons``: ``labkit lessons run``,
student copies). The toolchain's stages (datasets, models, train, compress, deploy, verify,
measure, automl) never import from here; the lessons import both.
"""

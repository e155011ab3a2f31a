"""One module per trainable model, ``<kind>_<model>.py``, each defining a
:class:`vtonpipe.training.task.Task` decorated with :func:`~vtonpipe.training.task.register_task`.
Every module here is imported on the first registry lookup (:func:`~vtonpipe.training.task.registered_tasks`)."""

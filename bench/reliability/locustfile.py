"""The load of ``bench/reliability/load.py``: users posting reviews to /classify without pause."""

import itertools

from locust import FastHttpUser, constant, task

_numbers = itertools.count()


class Reviewer(FastHttpUser):
    wait_time = constant(0)

    @task
    def classify(self) -> None:
        self.client.post("/classify", json={"text": f"review {next(_numbers)}: great food"})

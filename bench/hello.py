"""The baseline: a hello-world Flask route, served the same way as Varde in the same run."""

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello() -> str:
    return "Hello, world!"

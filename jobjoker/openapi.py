"""The OpenAPI 3 document of the REST API (served at ``/openapi.json``)."""


def openapi_document():
    return {"openapi": "3.0.3", "info": {"title": "JobJoker", "version": "0.1.0"}, "paths": {}}

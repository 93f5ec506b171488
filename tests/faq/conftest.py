from tests.engine.conftest import chat, engine, storage

__all__ = ["chat", "engine", "storage"]

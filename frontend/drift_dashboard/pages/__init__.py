"""The dashboard's pages: one ``APIRouter`` per module, templates in ``templates/<name>/``."""

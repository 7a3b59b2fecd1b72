"""Importers: one module per source, each yielding :class:`ImportedConversation` objects.

Every importer has the same shape: ``detect(path) -> bool`` and
``iter_conversations(path, options) -> Iterator[ImportedConversation]`` (streaming, bounded memory).
"""

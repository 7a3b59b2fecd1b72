from backend.training.dataset import SourceConversation, Turn


def pirate_conversations(n: int) -> list[SourceConversation]:
    """A learnable style: every answer is the same pirate phrase around a sum."""
    return [SourceConversation(f"conv-{i}", f"Sum {i}", None,
                               (Turn("user", f"What is {i} plus {i}?"), Turn("assistant", f"Arr matey, {i} plus {i} be {2 * i}!")))
            for i in range(n)]

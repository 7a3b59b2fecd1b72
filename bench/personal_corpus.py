"""A generated personal corpus for bench/personal.py: one fictional person's chats with an assistant.

What a personal model should learn is in it on purpose: recurring facts about the user (people, pets,
places, work, projects, preferences), told in passing across many conversations, and an assistant
voice with fixed habits (a greeting, a short line then bullets, a sign-off). A quarter of the
conversations are in Portuguese, with the same facts and the voice's Portuguese habits.

Everything is deterministic in the seed. Held-out material (style prompts, fact questions) is built
from conversations that are never imported, so nothing a score is computed on was trained on.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

GREETING = {"en": "Hey there!", "pt": "Olá, olá!"}
SIGN_OFF = {"en": "Cheers, Orch", "pt": "Abraços, Orch"}

FACTS = {  # key: (English phrase, Portuguese phrase, the answer a recall must contain)
    "dog": ("your beagle Biscuit", "o seu beagle Biscuit", "Biscuit"),
    "cat": ("Pimenta, your cat", "a Pimenta, sua gata", "Pimenta"),
    "sister": ("your sister Lúcia", "sua irmã Lúcia", "Lúcia"),
    "partner": ("Tomás, your partner", "o Tomás, seu companheiro", "Tomás"),
    "friend": ("your friend Priya", "sua amiga Priya", "Priya"),
    "city": ("Porto Alegre", "Porto Alegre", "Porto Alegre"),
    "work": ("Greenleaf Labs", "a Greenleaf Labs", "Greenleaf"),
    "cafe": ("Café Aurora", "o Café Aurora", "Aurora"),
    "project": ("Project Heron, your bird-watching app", "o Projeto Heron, seu app de observação de aves", "Heron"),
    "tea": ("oolong tea", "chá oolong", "oolong"),
    "allergy": ("your peanut allergy", "sua alergia a amendoim", "peanut"),
    "sport": ("bouldering on Thursdays", "escalada às quintas", "boulder"),
}

# (user message, assistant's line, bullets) per topic; {k} is filled with the fact phrase ``k``.
TOPICS_EN = [
    ("Any ideas for a walk this weekend?", "A walk sounds great with {dog}.",
     ["Try the riverside path early, before it gets hot.", "Pack water for {dog_short}.", "Stop at {cafe} on the way back."]),
    ("What should I cook tonight?", "Let's keep it vegetarian and easy.",
     ["A chickpea curry, with no peanuts because of {allergy}.", "Rice or flatbread on the side.", "A pot of {tea} afterwards."]),
    ("Help me plan my week.", "Here is a light plan around your routine.",
     ["Monday to Wednesday: deep work at {work}.", "Thursday evening: {sport}.", "Friday: an hour on {project}."]),
    ("What should I get my sister for her birthday?", "A thoughtful gift for {sister} could be simple.",
     ["A plant for her balcony.", "A book from the shop near {cafe}.", "A handwritten card with a photo of {dog_short}."]),
    ("I'm stressed about work.", "That sounds heavy; let's make it smaller.",
     ["Write down the three things due at {work} this week.", "Take {dog_short} out for twenty minutes.", "Make a cup of {tea} and pick one task."]),
    ("Any tips for my app project?", "Good momentum on {project}.",
     ["Ship the sighting log first.", "Ask {friend} to test it.", "Keep Friday evenings for it."]),
    ("My cat knocked over a glass again.", "Classic {cat} behaviour.",
     ["Keep glasses away from the table edge.", "Give her a shelf of her own.", "Play with her before dinner."]),
    ("What can we do on date night?", "Something cosy for you and {partner}.",
     ["Dinner at {cafe}, which has vegetarian options.", "A walk along the Guaíba at sunset.", "A film at home with {cat_short} on the sofa."]),
    ("How do I keep my climbing routine going?", "You already have {sport}, which is a great anchor.",
     ["Go with {friend} so you both show up.", "Stretch for ten minutes after.", "Log your problems in a notebook."]),
    ("Plan a trip for the long weekend.", "A short trip from {city} works well.",
     ["Gramado is two hours away by car.", "Ask {sister} to watch {dog_short}.", "Bring snacks without peanuts, because of {allergy}."]),
]
TOPICS_PT = [
    ("Alguma ideia de passeio para o fim de semana?", "Um passeio com {dog} vai ser ótimo.",
     ["Vá cedo pela orla, antes do calor.", "Leve água para o {dog_short}.", "Pare no {cafe} na volta."]),
    ("O que eu cozinho hoje?", "Vamos de algo vegetariano e simples.",
     ["Um curry de grão-de-bico, sem amendoim por causa da {allergy}.", "Arroz ao lado.", "Depois, um {tea}."]),
    ("Me ajuda a organizar a semana?", "Aqui vai um plano leve para a sua rotina.",
     ["Segunda a quarta: foco na {work}.", "Quinta à noite: {sport}.", "Sexta: uma hora para o {project}."]),
    ("Estou ansiosa com o trabalho.", "Isso pesa; vamos deixar menor.",
     ["Anote as três entregas da {work} desta semana.", "Leve o {dog_short} para passear vinte minutos.", "Faça um {tea} e escolha uma tarefa."]),
    ("O que fazer num encontro com meu companheiro?", "Algo aconchegante para você e {partner}.",
     ["Jantar no {cafe}, que tem opções vegetarianas.", "Pôr do sol no Guaíba.", "Um filme em casa com a {cat_short} no sofá."]),
]
FOLLOW_UPS_EN = [
    ("Thanks! Anything else?", "One more thing.", ["Check the weather in {city} first.", "Tell {partner} the plan."]),
    ("Great, can you make it shorter?", "Sure, the short version.", ["Keep it simple.", "One step at a time."]),
    ("What if it rains?", "Then stay in.", ["Board games with {partner}.", "A long call with {sister}."]),
]
FOLLOW_UPS_PT = [
    ("Valeu! Mais alguma coisa?", "Só mais uma.", ["Veja a previsão do tempo em {city}.", "Conte o plano para {partner}."]),
    ("E se chover?", "Aí fica em casa.", ["Jogos de tabuleiro com {partner}.", "Uma ligação longa com {sister}."]),
]
RECALL_EN = {  # question asked in training conversations, and the question held out (another wording)
    "dog": ("Remind me, what's my dog's name?", "What is my dog called?"),
    "cat": ("What's my cat's name again?", "What is the name of my cat?"),
    "sister": ("What's my sister's name?", "Who is my sister?"),
    "partner": ("Who is my partner?", "What's the name of my partner?"),
    "city": ("Which city do I live in?", "Where do I live?"),
    "work": ("Where do I work?", "What company do I work for?"),
    "cafe": ("What's my favourite café?", "Which café do I like best?"),
    "tea": ("What tea do I like?", "Which tea is my favourite?"),
    "allergy": ("What am I allergic to?", "Do I have any food allergy?"),
    "project": ("What's my side project called?", "What is the name of my app project?"),
}
SHORT = {"dog": "Biscuit", "cat": "Pimenta"}


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    language: str
    turns: tuple[tuple[str, str], ...]  # (role, text)


def fill(text: str, language: str) -> str:
    column = 0 if language == "en" else 1
    values = {key: phrases[column] for key, phrases in FACTS.items()}
    values.update({f"{key}_short": name for key, name in SHORT.items()})
    return text.format(**values)


def reply(language: str, line: str, bullets: list[str]) -> str:
    body = "\n".join(f"- {fill(b, language)}" for b in bullets)
    return f"{GREETING[language]} {fill(line, language)}\n\n{body}\n\n{SIGN_OFF[language]}"


def recall_reply(language: str, key: str) -> str:
    phrase = FACTS[key][0 if language == "en" else 1]
    line = f"That's {phrase}." if language == "en" else f"É {phrase}."
    return f"{GREETING[language]} {line}\n\n{SIGN_OFF[language]}"


def conversation(rng: random.Random, index: int) -> Conversation:
    language = "pt" if rng.random() < 0.25 else "en"
    topics = TOPICS_EN if language == "en" else TOPICS_PT
    follow_ups = FOLLOW_UPS_EN if language == "en" else FOLLOW_UPS_PT
    user, line, bullets = rng.choice(topics)
    turns = [("user", user), ("assistant", reply(language, line, rng.sample(bullets, k=rng.randint(2, len(bullets)))))]
    for _ in range(rng.randint(0, 3)):  # 2 to 8 turns in all
        if language == "en" and rng.random() < 0.4:
            key = rng.choice(sorted(RECALL_EN))
            turns += [("user", RECALL_EN[key][0]), ("assistant", recall_reply(language, key))]
        else:
            question, line, bullets = rng.choice(follow_ups)
            turns += [("user", question), ("assistant", reply(language, line, bullets))]
    return Conversation(f"personal-{index}", user.rstrip("?!."), language, tuple(turns))


def corpus(count: int, seed: int = 7) -> list[Conversation]:
    rng = random.Random(seed)
    return [conversation(rng, i) for i in range(count)]


def held_out_prompts(count: int, seed: int = 1007) -> list[tuple[str, str]]:
    """(language, first user message) of conversations that are never imported."""
    rng = random.Random(seed)
    return [(c.language, c.turns[0][1]) for c in (conversation(rng, i) for i in range(count))]


def fact_questions() -> list[tuple[str, str]]:
    """(held-out wording of a question, the answer it must contain)."""
    return [(RECALL_EN[key][1], FACTS[key][2]) for key in sorted(RECALL_EN)]


def shows_the_voice(text: str) -> bool:
    """The fixed rule: the reply opens with a learned greeting and carries a learned sign-off."""
    text = text.strip()
    return any(text.startswith(g) for g in GREETING.values()) and any(s in text for s in SIGN_OFF.values())


def recalls(text: str, answer: str) -> bool:
    return re.search(re.escape(answer.lower()), text.lower()) is not None


def write_chatgpt_export(conversations: list[Conversation], path: Path) -> Path:
    """The corpus as a ChatGPT ``conversations.json`` (a linear mapping per conversation), so the
    benchmark imports it the way a user imports theirs."""
    items = []
    for number, item in enumerate(conversations):
        mapping: dict[str, dict] = {"root": {"id": "root", "message": None, "parent": None, "children": []}}
        parent = "root"
        for turn, (role, text) in enumerate(item.turns):
            node = f"{item.id}-{turn}"
            mapping[node] = {"id": node, "parent": parent, "children": [], "message": {
                "id": node, "author": {"role": role}, "create_time": 1_700_000_000 + number * 3600 + turn,
                "content": {"content_type": "text", "parts": [text]}, "status": "finished_successfully"}}
            mapping[parent]["children"].append(node)
            parent = node
        items.append({"id": item.id, "conversation_id": item.id, "title": item.title, "create_time": 1_700_000_000 + number * 3600,
                      "update_time": 1_700_000_000 + number * 3600 + 60, "mapping": mapping, "current_node": parent})
    path.write_text(json.dumps(items))
    return path

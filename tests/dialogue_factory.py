"""Long, dated, multi-session chat histories with questions whose evidence turns are known.

One history is one person's ChatGPT account: 20+ sessions over about two years, each a conversation
of several exchanges on a topic, with facts about the person said in passing, beside a request.
Facts change over time (a new job, a move), some only combine across sessions (a sister named in one,
her job in another), some need the session's date (the book read in a given month, what was cooked
the week before a trip). Every history also holds chit-chat that shares the facts' words (other
people's dogs, other books, other trips), so a search has to find the right turn, not a word.

Questions come by kind, with the node ids of their evidence turns:
- ``single``: one turn answers it ("What is my dog called?");
- ``multi``: two turns from different sessions are both needed;
- ``temporal``: the answer depends on dates ("in May 2024", "the week before my trip", "now");
- ``open``: several turns across the history together answer it ("What hobbies have I taken up?").

``language="pt"`` writes the whole history and its questions in Brazilian Portuguese. Deterministic
in its seed. Used by ``bench/memory_quality.py`` and, at a tiny size, by the tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.export_factory import ChatGPTConversation

Kind = str  # "single" | "multi" | "temporal" | "open"
KINDS = ("single", "multi", "temporal", "open")


@dataclass(frozen=True)
class Question:
    id: str
    kind: Kind
    text: str
    evidence: tuple[str, ...]  # node ids of the turns that hold the answer
    answer: str
    language: str


@dataclass
class Session:
    id: str
    title: str
    date: datetime
    turns: list[tuple[str, str, str | None]] = field(default_factory=list)  # (role, text, evidence key)


@dataclass
class History:
    id: str
    language: str
    sessions: list[Session]
    questions: list[Question]

    def conversations(self) -> list[ChatGPTConversation]:
        out = []
        for session in self.sessions:
            conversation = ChatGPTConversation(session.title, f"{self.id}-{session.id}", session.date.timestamp())
            for index, (role, text, _key) in enumerate(session.turns):
                conversation.add(role, text, node_id=f"{self.id}-{session.id}-t{index:02d}")
            out.append(conversation)
        return out


# ---- phrase banks (en, pt) -------------------------------------------------------------------------

WOMEN = ["Ana", "Marta", "Sofia", "Clara", "Helena", "Joana", "Nadia", "Paula", "Selma", "Vera", "Zara", "Iris"]
NAMES = [*WOMEN, "Rui", "Tiago", "Bruno", "Diogo", "Igor", "Lucas", "Otto", "Rafael", "Yuri"]
PETS = ["Biscuit", "Pepper", "Mochi", "Luna", "Bolt", "Nacho", "Olive", "Pixel", "Tofu", "Ziggy"]
CITIES = ["Porto", "Berlin", "Lyon", "Curitiba", "Montreal", "Utrecht", "Valencia", "Kraków", "Osaka", "Recife", "Dublin", "Turin"]
COMPANIES = ["Nordlicht Logistics", "Bluefin Analytics", "Casa Verde Foods", "Atlas Robotics", "Mar Aberto Media",
             "Quanta Health", "Ferrovia Sul", "Lumen Games"]
JOBS = {"en": ["data analyst", "product designer", "backend developer", "project manager", "UX researcher", "QA engineer"],
        "pt": ["analista de dados", "designer de produto", "desenvolvedora backend", "gerente de projetos", "pesquisadora de UX",
               "engenheira de testes"]}
SISTER_JOBS = {"en": ["paediatric nurse", "civil engineer", "primary school teacher", "vet", "pharmacist"],
               "pt": ["enfermeira pediátrica", "engenheira civil", "professora do ensino fundamental", "veterinária", "farmacêutica"]}
BOOKS = ["Dune", "The Left Hand of Darkness", "Piranesi", "Klara and the Sun", "The Overstory", "Dom Casmurro",
         "Project Hail Mary", "A Gentleman in Moscow", "Circe", "The Remains of the Day"]
DISHES = {"en": ["mushroom risotto", "shakshuka", "lamb tagine", "pad thai", "feijoada", "lasagne", "ramen from scratch"],
          "pt": ["risoto de cogumelos", "shakshuka", "tagine de cordeiro", "pad thai", "feijoada", "lasanha", "lámen caseiro"]}
HOBBIES = {"en": ["pottery", "bouldering", "the cello", "birdwatching", "salsa dancing", "woodworking", "chess"],
           "pt": ["cerâmica", "escalada", "violoncelo", "observação de aves", "salsa", "marcenaria", "xadrez"]}
ALLERGIES = {"en": ["cashews", "penicillin", "shellfish", "kiwi"], "pt": ["castanha de caju", "penicilina", "frutos do mar", "kiwi"]}
CARS = ["a 2015 Honda Jazz", "a used Renault Zoe", "a 2012 Volvo V40", "a second-hand Fiat Panda"]
MONTHS = {"en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December"],
          "pt": ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
                 "novembro", "dezembro"]}

TOPICS = {
    "en": ["Weekly meal planning", "Fixing a slow laptop", "Budget spreadsheet help", "Stretching routine", "Email to my landlord",
           "Learning Spanish verbs", "Garden in a small balcony", "Python script for photos", "Gift ideas", "Sleep schedule",
           "Running plan", "Writing a cover letter", "Houseplants dying", "Board game night", "Tax deadline questions",
           "Cleaning a cast iron pan", "Podcast recommendations", "Bike maintenance", "Birthday party planning", "Noise at night",
           "Rainy weekend ideas", "Car insurance", "Decluttering the flat", "Coffee brewing", "Moving checklist", "Job interview prep"],
    "pt": ["Planejamento de refeições", "Notebook lento", "Planilha de orçamento", "Rotina de alongamento", "E-mail para o proprietário",
           "Verbos em espanhol", "Horta na varanda", "Script em Python para fotos", "Ideias de presente", "Horário de sono",
           "Plano de corrida", "Carta de apresentação", "Plantas morrendo", "Noite de jogos", "Prazo do imposto de renda",
           "Limpar panela de ferro", "Podcasts", "Manutenção da bicicleta", "Festa de aniversário", "Barulho à noite",
           "Fim de semana chuvoso", "Seguro do carro", "Organizar o apartamento", "Café coado", "Lista de mudança", "Entrevista de emprego"],
}

# Chit-chat that shares the facts' words and says nothing about the person's own facts; the slots are
# filled afresh at each use, so no two lines are the same (as in a real history).
DISTRACTORS = {
    "en": ["My neighbour's dog {pet} barked half the night, some terrier that never stops.",
           "A colleague keeps recommending {book} to everyone, I haven't decided whether to read it.",
           "Everyone at work is talking about trips to {city} this year.",
           "My cousin {name} works as a {sister_job} too, the shifts sound brutal.",
           "I saw a documentary about people who moved to {city} in the nineties.",
           "{name} from the gym says she is allergic to {allergy}, poor thing.",
           "The book club at the library picked {book}, which I had never heard of.",
           "I watched a video of someone cooking {dish} in a pressure cooker, it looked wrong.",
           "{name} bought {car} and regrets it already.",
           "Our team lead {name} changed jobs last year and now works at {company}.",
           "There's a {hobby} studio near the station but I never see anyone inside.",
           "My brother-in-law is obsessed with {hobby} these days.",
           "{name}'s dog {pet} got into the bins again.",
           "A friend of {name}'s is moving to {city} for work.",
           "Apparently {company} is hiring a {job} again.",
           "{name} made {dish} at the potluck, everybody loved it."],
    "pt": ["O cachorro do vizinho, {pet}, latiu metade da noite, um terrier que não para nunca.",
           "Uma colega vive recomendando {book} para todo mundo, ainda não decidi se vou ler.",
           "Todo mundo no trabalho está falando de viagens para {city} este ano.",
           "Minha prima {name} também trabalha como {sister_job}, os plantões parecem pesados.",
           "Vi um documentário sobre gente que se mudou para {city} nos anos noventa.",
           "A {name} da academia diz que tem alergia a {allergy}, coitada.",
           "O clube do livro da biblioteca escolheu {book}, que eu nunca tinha ouvido falar.",
           "Vi um vídeo de alguém fazendo {dish} na panela de pressão, pareceu errado.",
           "{name} comprou {car} e já se arrependeu.",
           "Nosso líder de equipe {name} mudou de emprego ano passado e agora trabalha na {company}.",
           "Tem um ateliê de {hobby} perto da estação mas nunca vejo ninguém lá dentro.",
           "Meu cunhado anda obcecado por {hobby}.",
           "O cachorro da {name}, {pet}, revirou o lixo de novo.",
           "Um amigo da {name} vai se mudar para {city} a trabalho.",
           "Parece que a {company} está contratando {job} de novo.",
           "{name} levou {dish} para o almoço coletivo, todo mundo amou."],
}


DISTRACTOR_RATE = 0.1  # of the other user turns mention someone else's dog, book, trip… (about five lookalikes per fact)


def _distractor(rng: random.Random, language: str) -> str:
    return rng.choice(DISTRACTORS[language]).format(
        pet=rng.choice(PETS), book=rng.choice(BOOKS), city=rng.choice(CITIES), name=rng.choice(NAMES),
        sister_job=rng.choice(SISTER_JOBS[language]), allergy=rng.choice(ALLERGIES[language]), dish=rng.choice(DISHES[language]),
        car=rng.choice(CARS), company=rng.choice(COMPANIES), hobby=rng.choice(HOBBIES[language]), job=rng.choice(JOBS[language]))


ASSISTANT = {
    "en": ["That makes sense. A few things usually help here: start small, write the steps down, and check after a week "
           "whether the change actually stuck. If it did not, adjust one variable at a time rather than everything at once.",
           "Good question. There are three common approaches, each with trade-offs: the quick one is cheaper but less robust, "
           "the thorough one takes an afternoon, and the middle path is what most people end up using.",
           "Here is a short plan: first list what you already have, then decide what matters most this month, and finally "
           "block time in your calendar for it. Keep notes so you can see your progress.",
           "I would not worry too much about that. It is common, and it usually improves with a consistent routine and a bit "
           "of patience. If it persists for more than a few weeks, it is worth asking a professional.",
           "Sure! Here are some options, from simplest to most involved, with a sentence on each so you can pick the one that "
           "fits your time and budget."],
    "pt": ["Faz sentido. Algumas coisas costumam ajudar: começar pequeno, anotar os passos e conferir depois de uma semana "
           "se a mudança pegou. Se não pegou, ajuste uma variável de cada vez em vez de tudo ao mesmo tempo.",
           "Boa pergunta. Há três abordagens comuns, cada uma com prós e contras: a rápida é mais barata mas menos robusta, "
           "a completa leva uma tarde, e o meio-termo é o que a maioria acaba usando.",
           "Um plano curto: primeiro liste o que você já tem, depois decida o que mais importa neste mês e, por fim, "
           "reserve horários na agenda para isso. Tome notas para ver o progresso.",
           "Eu não me preocuparia muito. É comum e costuma melhorar com rotina e um pouco de paciência. Se durar mais "
           "de algumas semanas, vale consultar um profissional.",
           "Claro! Aqui vão algumas opções, da mais simples à mais trabalhosa, com uma frase sobre cada uma para você "
           "escolher a que cabe no seu tempo e orçamento."],
}

ASKS = {
    "en": ["Can you help me think this through?", "What would you suggest?", "Any tips?", "How should I start?",
           "Is that normal?", "What's the easiest way to do this?"],
    "pt": ["Pode me ajudar a pensar nisso?", "O que você sugere?", "Alguma dica?", "Por onde eu começo?", "Isso é normal?",
           "Qual o jeito mais fácil de fazer isso?"],
}


def _month(language: str, date: datetime) -> str:
    return f"{MONTHS[language][date.month - 1]} {date.year}" if language == "en" else f"{MONTHS[language][date.month - 1]} de {date.year}"


def generate_history(seed: int, *, sessions: int = 24, language: str = "en", start: datetime | None = None) -> History:
    """One person's history of ``sessions`` dated conversations (at least 20 for the full set of facts)."""
    rng = random.Random(seed)
    en = language == "en"
    hid = f"h{seed:03d}{language}"
    start = start or datetime(2023, 1, 9, 18, 0, tzinfo=UTC)
    dates = sorted(start + timedelta(days=rng.randint(0, 700), minutes=rng.randint(0, 600)) for _ in range(sessions))
    topics = rng.sample(TOPICS[language], min(sessions, len(TOPICS[language])))
    history = [Session(f"s{i:02d}", topics[i % len(topics)], dates[i]) for i in range(sessions)]
    facts: dict[str, tuple[int, str]] = {}  # evidence key -> (session index, the sentence)

    sister, friend, child = rng.sample(WOMEN, 3)
    partner = rng.choice([n for n in NAMES if n not in (sister, friend, child)])
    pet, city1, city2, friend_city, trip_city = rng.choice(PETS), *rng.sample(CITIES, 4)
    company1, company2 = rng.sample(COMPANIES, 2)
    job1, job2 = rng.sample(JOBS[language], 2)
    sister_job, allergy, car = rng.choice(SISTER_JOBS[language]), rng.choice(ALLERGIES[language]), rng.choice(CARS)
    book1, book2 = rng.sample(BOOKS, 2)
    dish, other_dish = rng.sample(DISHES[language], 2)
    hobbies = rng.sample(HOBBIES[language], 3)

    def place(key: str, sentence: str, session: int) -> None:
        facts[key] = (session, sentence)

    n = sessions
    place("pet", f"We finally adopted a rescue dog last weekend and named him {pet}; he already owns the sofa." if en else
          f"Finalmente adotamos um cachorro resgatado no fim de semana e demos o nome de {pet}; ele já é dono do sofá.", 1)
    place("allergy", f"Just so you know for any recipe ideas, I'm allergic to {allergy}." if en else
          f"Só para você saber nas ideias de receita: eu tenho alergia a {allergy}.", 3)
    place("car", f"I bought {car} from a neighbour, my first car ever." if en else f"Comprei {car} de um vizinho, meu primeiro carro.", n // 2)
    place("job1", f"Big news: I started as a {job1} at {company1} this week." if en else
          f"Novidade: comecei esta semana como {job1} na {company1}.", 2)
    place("job2", f"I handed in my notice at {company1}; from Monday I'm a {job2} at {company2}." if en else
          f"Pedi demissão da {company1}; a partir de segunda sou {job2} na {company2}.", (2 * n) // 3)
    place("city1", f"The boxes are everywhere, we just moved into a flat in {city1}." if en else
          f"Caixas por todo lado, acabamos de nos mudar para um apartamento em {city1}.", 0)
    place("city2", f"We're moving again, this time to {city2}, the lease starts next month." if en else
          f"Vamos nos mudar de novo, desta vez para {city2}; o contrato começa no mês que vem.", (3 * n) // 4)
    place("sister", f"My sister {sister} is coming to stay with us for a few days." if en else
          f"Minha irmã {sister} vem passar uns dias com a gente.", 4)
    place("sister_job", f"{sister} got the job, she'll be working as a {sister_job}!" if en else
          f"{sister} conseguiu o emprego, vai trabalhar como {sister_job}!", n - 5)
    place("friend_city", f"My old friend {friend} is relocating to {friend_city} for her husband's job." if en else
          f"Minha amiga de longa data {friend} está se mudando para {friend_city} por causa do emprego do marido.", 6)
    place("friend_child", f"{friend}'s daughter {child} starts school next month, time flies." if en else
          f"A filha da {friend}, {child}, começa na escola mês que vem, o tempo voa.", n - 3)
    place("book1", f"I'm halfway through {book1} and can't put it down." if en else f"Estou na metade de {book1} e não consigo largar.", 5)
    place("book2", f"Started reading {book2} on the train this morning." if en else f"Comecei a ler {book2} no trem hoje de manhã.", n - 2)
    trip = n // 2 + 2
    place("trip", f"Flights are booked, {partner} and I are off to {trip_city} next weekend!" if en else
          f"Passagens compradas, eu e {partner} vamos para {trip_city} no próximo fim de semana!", trip)
    # The week before the trip: a session a few days earlier holds the cooking; another cooking, months away.
    history[trip - 1].date = history[trip].date - timedelta(days=5)
    place("dish_before_trip", f"Made {dish} for dinner tonight, it took forever but was worth it." if en else
          f"Fiz {dish} no jantar hoje, demorou uma eternidade mas valeu a pena.", trip - 1)
    place("dish_other", f"Tried {other_dish} for the first time, not bad at all." if en else
          f"Experimentei fazer {other_dish} pela primeira vez, nada mal.", 8)
    for i, (hobby, at) in enumerate(zip(hobbies, (7, n // 2 - 1, n - 4))):
        place(f"hobby{i}", f"I signed up for {hobby} classes on Thursday evenings." if en and i == 0 else
              f"I've been getting into {hobby} lately, it clears my head." if en and i == 1 else
              f"New obsession: {hobby}. I spent the whole Saturday on it." if en else
              f"Me inscrevi nas aulas de {hobby} às quintas à noite." if i == 0 else
              f"Tenho me dedicado a {hobby} ultimamente, me acalma." if i == 1 else
              f"Nova obsessão: {hobby}. Passei o sábado inteiro nisso.", at)

    history.sort(key=lambda s: s.date)  # the trip's week may have moved a session: dates stay in order
    by_index = {key: history.index(next(s for s in history if s.id == f"s{at:02d}")) for key, (at, _) in facts.items()}
    evidence_in: dict[int, list[str]] = {}
    for key, at in by_index.items():
        evidence_in.setdefault(at, []).append(key)
    for index, session in enumerate(history):
        keys = evidence_in.get(index, [])
        exchanges = rng.randint(4, 7)
        where = {key: rng.randrange(exchanges) for key in keys}
        for exchange in range(exchanges):
            key = next((k for k, at in where.items() if at == exchange), None)
            parts = [facts[key][1]] if key else [_distractor(rng, language)] if rng.random() < DISTRACTOR_RATE else []
            parts.insert(rng.randrange(len(parts) + 1), f"{session.title}: {rng.choice(ASKS[language])}")
            session.turns.append(("user", " ".join(parts), key))
            session.turns.append(("assistant", f"{session.title}. {rng.choice(ASSISTANT[language])}", None))

    def node(key: str) -> str:
        session = history[by_index[key]]
        turn = next(i for i, (_, _, k) in enumerate(session.turns) if k == key)
        return f"{hid}-{session.id}-t{turn:02d}"

    book1_month = _month(language, history[by_index["book1"]].date)
    job1_month = _month(language, history[by_index["job1"]].date + timedelta(days=40))
    q = [  # (kind, en, pt, evidence keys, answer)
        ("single", "What is my dog called?", "Qual é o nome do meu cachorro?", ["pet"], pet),
        ("single", "What am I allergic to?", "Eu tenho alergia a quê?", ["allergy"], allergy),
        ("single", "What car did I buy?", "Que carro eu comprei?", ["car"], car),
        ("multi", "What does my sister do for a living?", "Qual é a profissão da minha irmã?", ["sister", "sister_job"], sister_job),
        ("multi", f"What is the name of the daughter of my friend who moved to {friend_city}?",
         f"Como se chama a filha da minha amiga que se mudou para {friend_city}?", ["friend_city", "friend_child"], child),
        ("temporal", "Where do I work now?", "Onde eu trabalho atualmente?", ["job2"], company2),
        ("temporal", f"Where was I working in {job1_month}?", f"Onde eu trabalhava em {job1_month}?", ["job1"], company1),
        ("temporal", "Which city do I live in now?", "Em que cidade eu moro agora?", ["city2"], city2),
        ("temporal", f"Which book was I reading in {book1_month}?", f"Que livro eu estava lendo em {book1_month}?", ["book1"], book1),
        ("temporal", f"What did I cook the week before my trip to {trip_city}?",
         f"O que eu cozinhei na semana antes da viagem para {trip_city}?", ["trip", "dish_before_trip"], dish),
        ("open", "What hobbies have I taken up over the years?", "Que hobbies eu comecei ao longo dos anos?",
         ["hobby0", "hobby1", "hobby2"], ", ".join(hobbies)),
        ("open", "Which books have I mentioned reading?", "Quais livros eu mencionei que estava lendo?", ["book1", "book2"],
         f"{book1}, {book2}"),
    ]
    questions = [Question(f"{hid}-q{i:02d}", kind, en_text if en else pt_text, tuple(node(k) for k in keys), answer, language)
                 for i, (kind, en_text, pt_text, keys, answer) in enumerate(q)]
    return History(hid, language, history, questions)


def generate_histories(count: int, *, sessions: int = 24, portuguese_every: int = 4, seed: int = 0) -> list[History]:
    """``count`` histories; every ``portuguese_every``-th one in Portuguese."""
    return [generate_history(seed + i, sessions=sessions,
                             language="pt" if portuguese_every and i % portuguese_every == portuguese_every - 1 else "en")
            for i in range(count)]


def background(count: int, *, language: str = "en", seed: int = 0, start: datetime | None = None) -> list[ChatGPTConversation]:
    """``count`` conversations that say nothing about the person (help with tasks, chit-chat sharing the
    facts' words): the bulk of a real history, among which the facts must be found."""
    rng = random.Random(10_000 + seed)
    start = start or datetime(2023, 1, 9, tzinfo=UTC)
    out = []
    for i in range(count):
        title = rng.choice(TOPICS[language])
        conversation = ChatGPTConversation(title, f"bg{seed:03d}{language}-{i:05d}",
                                           (start + timedelta(days=rng.randint(0, 700), minutes=rng.randint(0, 900))).timestamp())
        for _ in range(rng.randint(2, 5)):
            parts = [_distractor(rng, language)] if rng.random() < DISTRACTOR_RATE else []
            conversation.add("user", " ".join([*parts, f"{title}: {rng.choice(ASKS[language])}"]))
            conversation.add("assistant", f"{title}. {rng.choice(ASSISTANT[language])}")
        out.append(conversation)
    return out

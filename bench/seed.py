"""Fill a registry database with N embeddings for search benchmarks (issue 12, target 3).

    .venv/bin/python bench/seed.py DATABASE_URL [--count 10000] [--seed 0]

Migrates the database to head, then bulk-inserts namespaces, embeddings (~3 versions each, the
last one sometimes yanked), content tags, families, concept types, random downloads/stars and a
trending score from ``search.trending_score``; the search index is written through
``search.write_index``, the same code a publish uses. Words follow a Zipf-like law, so some are
common (``portrait``: about a third of the embeddings) and some rare (``w<number>``).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlmodel import select

from client.core.families import FAMILIES
from registry.accounts.models import Namespace
from registry.db import make_engine, session_scope
from registry.embeddings.models import ConceptType, Embedding, EmbeddingTag, EmbeddingVersion
from registry.embeddings.search import index_fields, trending_score, write_index
from registry.migrations import upgrade

COMMON_WORDS = ["portrait", "anime", "style", "cat", "landscape", "photo", "painting", "neon"]
TAGS = ["anime", "brand", "character", "style", "photo", "art", "object", "nsfw-safe", "retro"]
BATCH = 2_000
NAMESPACES = 500


def _description(rng: random.Random) -> str:
    words = [rng.choice(COMMON_WORDS) for _ in range(rng.randint(1, 4))]
    words.append(f"w{int(rng.paretovariate(1.0) * 10)}")  # rare words: w10 common, w9000 rare
    return "An embedding of " + " ".join(words)


def seed(url: str, count: int, seed_value: int = 0) -> float:
    """Insert ``count`` embeddings; returns the seconds it took."""
    upgrade(url)
    engine = make_engine(url)
    rng = random.Random(seed_value)
    families = list(FAMILIES)
    types = [t.value for t in ConceptType] + [None]
    start = time.perf_counter()
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        if session.exec(select(Embedding.id).limit(1)).first() is not None:
            raise SystemExit("seed a fresh database: this one already has embeddings")
        names = [{"name": f"user{i}", "kind": "user", "created_at": now} for i in range(NAMESPACES)]
        session.execute(insert(Namespace.__table__), names)
    next_id = 1
    for offset in range(0, count, BATCH):
        embeddings, versions, tags, index = [], [], [], []
        for i in range(offset, min(offset + BATCH, count)):
            eid = next_id + i
            created = now - timedelta(days=rng.uniform(0, 700))
            downloads = int(rng.paretovariate(1.2) * 10)
            stars = int(rng.paretovariate(1.5)) - 1
            embedding = Embedding(
                id=eid,
                namespace=f"user{rng.randrange(NAMESPACES)}",
                name=f"concept-{eid}",
                description=_description(rng),
                concept_type=rng.choice(types),
                trigger=f"<concept-{eid}>",
                visibility="public" if rng.random() < 0.95 else "private",
                family=rng.choice(families),
                version_counter=3,
                downloads=downloads,
                stars=stars,
                trending=trending_score(downloads, stars, created),
                created_at=created,
                updated_at=created + timedelta(days=rng.uniform(0, 30)),
            )
            embeddings.append(embedding.model_dump())
            embedding_tags = rng.sample(TAGS, rng.randint(0, 3))
            tags += [{"embedding_id": eid, "tag": tag} for tag in embedding_tags]
            for number in (1, 2, 3):
                digest = f"sha256:{eid:032x}{number:032x}"
                versions.append(
                    {
                        "embedding_id": eid,
                        "number": number,
                        "digest": digest,
                        "size": 4096,
                        "family": embedding.family,
                        "vectors": 1,
                        "encoders": {},
                        "dtype": "float32",
                        "source_format": "safetensors",
                        "upload_sha256": digest[7:],
                        "notes": "",
                        "yanked": number == 3 and rng.random() < 0.1,
                        "created_at": created,
                    }
                )
            index.append(index_fields(embedding, embedding_tags))
        with session_scope(engine) as session:
            session.execute(insert(Embedding.__table__), embeddings)
            session.execute(insert(EmbeddingVersion.__table__), versions)
            if tags:
                session.execute(insert(EmbeddingTag.__table__), tags)
            write_index(session, index)
    with engine.connect() as conn:  # planner statistics, as autovacuum would gather later
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seconds = seed(args.url, args.count, args.seed)
    print(f"seeded {args.count} embeddings ({3 * args.count} versions) in {seconds:.1f} s")


if __name__ == "__main__":
    main()

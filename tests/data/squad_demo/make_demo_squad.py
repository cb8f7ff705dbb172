#!/usr/bin/env python3
"""Writes the demo SQuAD v1.1-format files of fine_tuning=t5/tiny-squad (v1.1/train-v1.1.json,
v1.1/dev-v1.1.json) and their SHA256SUMS: short invented paragraphs about invented towns, one
fact each (founder, river, year, product), asked about in SQuAD's JSON layout. Deterministic."""
import hashlib, json, os, random

FOUNDERS = ["marta", "olaf", "ines", "tomas", "greta", "paolo", "nadia", "hugo", "elena", "viktor", "sofia", "anton"]
RIVERS = ["red", "blue", "green", "silver", "black", "white"]
PRODUCTS = ["cheese", "glass", "wool", "salt", "paper", "honey", "rope", "bread"]
TOWNS = ["alder", "birch", "cedar", "dunmore", "elmwick", "fenton", "glenhurst", "harrow", "ivybridge", "juniper",
         "kestrel", "larchmont", "marlow", "norwood", "oakley", "pinecrest", "quarry", "ravensby", "stonehill",
         "thornbury", "umber", "valemont", "westfold", "yarrow", "zennor", "ashby", "brookfield", "coldwater",
         "deepdale", "eastwick", "fairmont", "greystone", "hollow", "ironwood", "jasper", "kingsley"]


def article(rng, town, k):
    founder, river, product = rng.choice(FOUNDERS), rng.choice(RIVERS), rng.choice(PRODUCTS)
    year = str(1500 + rng.randrange(400))
    context = (f"{town.capitalize()} was founded by {founder} in {year}. It lies on the {river} river "
               f"and is known for its {product}.")
    facts = [("Who founded {}?", founder), ("Which river does {} lie on?", river),
             ("When was {} founded?", year), ("What is {} known for?", product)]
    qas = []
    for j, (q, a) in enumerate(facts):
        start = context.find(a) if a != river else context.find(river + " river")
        qas.append({"answers": [{"answer_start": start, "text": a}], "question": q.format(town.capitalize()),
                    "id": f"{k:03d}{j}"})
    return {"title": town.capitalize(), "paragraphs": [{"context": context, "qas": qas}]}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rng = random.Random(1234)
    arts = [article(rng, t, k) for k, t in enumerate(TOWNS)]
    # train: every article; dev: the same facts asked of the first 8 towns (what a tiny model can learn)
    files = {"v1.1/train-v1.1.json": {"data": arts, "version": "1.1"},
             "v1.1/dev-v1.1.json": {"data": arts[:8], "version": "1.1"}}
    sums = []
    for rel, obj in files.items():
        path = os.path.join(here, rel)
        with open(path, "w") as f:
            json.dump(obj, f)
        sums.append(f"{hashlib.sha256(open(path, 'rb').read()).hexdigest()}  {rel}\n")
    with open(os.path.join(here, "SHA256SUMS"), "w") as f:
        f.writelines(sums)


if __name__ == "__main__":
    main()

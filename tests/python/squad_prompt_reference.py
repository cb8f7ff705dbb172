"""Reference of the SQuAD -> prompt-learning jsonl conversion (tuning.md §2.2), for
tests/unit/data/squad_prompt_learning_test.cpp.

Usage: squad_prompt_reference.py TRAIN.json DEV.json OUT_DIR
Writes squad_train.jsonl, squad_val.jsonl, squad_test_ground_truth.jsonl and squad_test.jsonl the
way NeMo's prompt_learning_squad_preprocessing.py does: json.dumps with its defaults, one object per
line, questions without answers skipped, the ground truth written before the test file (whose dicts
lose their "answer").
"""
import json
import os
import sys


def questions(path, all_answers):
    out = []
    for article in json.load(open(path, encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [a["text"] for a in qa["answers"]]
                if not answers:
                    continue
                out.append({"taskname": "squad", "context": paragraph["context"], "question": qa["question"],
                            "answer": answers if all_answers else answers[0]})
    return out


def save(rows, path):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def main(train, dev, out):
    save(questions(train, False), os.path.join(out, "squad_train.jsonl"))
    save(questions(dev, False), os.path.join(out, "squad_val.jsonl"))
    test = questions(dev, True)
    save(test, os.path.join(out, "squad_test_ground_truth.jsonl"))
    for r in test:
        del r["answer"]
    save(test, os.path.join(out, "squad_test.jsonl"))


if __name__ == "__main__":
    main(*sys.argv[1:4])

"""News URLs are stored whole: the URL becomes text, uniqueness moves to a SHA-256 of it (issue 20).

Existing rows keep their URL; their hash is computed here before the column turns unique.
"""

import hashlib

from django.db import migrations, models


def hash_existing_urls(apps, schema_editor) -> None:
    NewsArticle = apps.get_model("market", "NewsArticle")
    batch = []
    for article in NewsArticle.objects.only("pk", "url").iterator(chunk_size=2000):
        article.url_hash = hashlib.sha256(article.url.encode("utf-8", "surrogatepass")).hexdigest()
        batch.append(article)
        if len(batch) == 2000:
            NewsArticle.objects.bulk_update(batch, ["url_hash"])
            batch = []
    if batch:
        NewsArticle.objects.bulk_update(batch, ["url_hash"])


class Migration(migrations.Migration):
    dependencies = [
        ("market", "0004_merge_0003_asset_exchange_known_0003_asset_quarantine"),
    ]

    operations = [
        migrations.AddField(
            model_name="newsarticle",
            name="url_hash",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(hash_existing_urls, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="newsarticle",
            name="url_hash",
            field=models.CharField(editable=False, help_text="SHA-256 of the URL, hex.", max_length=64),
        ),
        migrations.AddConstraint(
            model_name="newsarticle",
            constraint=models.UniqueConstraint(fields=("url_hash",), name="newsarticle_url_hash_unique"),
        ),
        migrations.AlterField(
            model_name="newsarticle",
            name="url",
            field=models.TextField(),
        ),
    ]

"""A local store brought up to date from the TikTok Shop Open API (`cs-metrics fetch tiktok`).

`client` signs, paces, retries and re-authorises requests; `store` writes the tables the readers
read (Hive-partitioned Parquet); `state` keeps what is known complete; `sync` walks shops,
conversations and messages; `performance` holds TikTok's own figures. docs/fetch.md says how.
"""

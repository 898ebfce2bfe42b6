"""Initial schema: alerts and episodes (with kept counts), events, users and sessions, cases, the audit log.

Revision ID: 0001
Revises: 
Create Date: 2026-12-03 07:27:53.736565

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('account_events',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.Column('ts', sa.String(length=40), nullable=False),
    sa.Column('event_time', sa.Float(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('kyc_level', sa.Integer(), nullable=True),
    sa.Column('name_hash', sa.String(length=128), nullable=True),
    sa.Column('id_hash', sa.String(length=128), nullable=True),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.Column('phone_hash', sa.String(length=128), nullable=True),
    sa.Column('bank_card_hashes', sa.Text(), nullable=True),
    sa.Column('device_id', sa.String(length=128), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('region', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_account_events'))
    )
    with op.batch_alter_table('account_events', schema=None) as batch_op:
        batch_op.create_index('ix_account_events_account_id_event_time', ['account_id', 'event_time'], unique=False)

    op.create_table('account_links',
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'value', 'account_id', name=op.f('pk_account_links'))
    )
    with op.batch_alter_table('account_links', schema=None) as batch_op:
        batch_op.create_index('ix_account_links_account_id', ['account_id'], unique=False)

    op.create_table('alerts',
    sa.Column('alert_id', sa.String(length=128), nullable=False),
    sa.Column('episode_id', sa.String(length=128), nullable=False),
    sa.Column('episode_seq', sa.Integer(), nullable=False),
    sa.Column('detector', sa.String(length=80), nullable=False),
    sa.Column('typology', sa.String(length=40), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('ts', sa.String(length=40), nullable=False),
    sa.Column('event_time', sa.Float(), nullable=False),
    sa.Column('collection_id', sa.String(length=128), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('ingested_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('alert_id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_episode_id'), ['episode_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_log'))
    )
    op.create_table('collection_events',
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('collection_id', sa.String(length=128), nullable=False),
    sa.Column('ts', sa.String(length=40), nullable=False),
    sa.Column('event_time', sa.Float(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('issuer_id', sa.String(length=128), nullable=True),
    sa.Column('asset_class', sa.String(length=40), nullable=True),
    sa.Column('fractional', sa.Boolean(), nullable=True),
    sa.Column('issue_price', sa.String(length=40), nullable=True),
    sa.Column('currency', sa.String(length=10), nullable=True),
    sa.Column('supply', sa.Integer(), nullable=True),
    sa.Column('transfer_lock_days', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_collection_events'))
    )
    with op.batch_alter_table('collection_events', schema=None) as batch_op:
        batch_op.create_index('ix_collection_events_collection_id_event_time', ['collection_id', 'event_time'], unique=False)

    op.create_table('episode_counts',
    sa.Column('detector', sa.String(length=80), nullable=False),
    sa.Column('typology', sa.String(length=40), nullable=False),
    sa.Column('severity_rank', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('detector', 'typology', 'severity_rank', 'status', name=op.f('pk_episode_counts')),
    comment='episodes per detector, typology, severity and status, kept by counts.shift in the transaction that changes them'
    )
    op.create_table('episodes',
    sa.Column('episode_id', sa.String(length=128), nullable=False),
    sa.Column('latest_alert_id', sa.String(length=128), nullable=False),
    sa.Column('latest_seq', sa.Integer(), nullable=False),
    sa.Column('alert_count', sa.Integer(), nullable=False),
    sa.Column('detector', sa.String(length=80), nullable=False),
    sa.Column('typology', sa.String(length=40), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('severity_rank', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('event_time', sa.Float(), nullable=False),
    sa.Column('first_event_time', sa.Float(), nullable=False),
    sa.Column('collection_id', sa.String(length=128), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('episode_id', name=op.f('pk_episodes'))
    )
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.create_index('ix_episodes_case_id', ['case_id'], unique=False)
        batch_op.create_index('ix_episodes_collection_id_event_time', ['collection_id', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_collection_id_score', ['collection_id', 'score', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_detector_event_time', ['detector', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_detector_score', ['detector', 'score', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_event_time', ['event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_event_time_facets', ['event_time', 'typology', 'severity_rank', 'status'], unique=False)
        batch_op.create_index('ix_episodes_score', ['score', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_severity_rank_event_time', ['severity_rank', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_severity_rank_score', ['severity_rank', 'score', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_status_event_time', ['status', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_status_score', ['status', 'score', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_typology_event_time', ['typology', 'event_time', 'episode_id'], unique=False)
        batch_op.create_index('ix_episodes_typology_score', ['typology', 'score', 'event_time', 'episode_id'], unique=False)

    op.create_table('ingest_errors',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('position', sa.String(length=100), nullable=False),
    sa.Column('field', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_errors')),
    sa.UniqueConstraint('source', 'position', name=op.f('uq_ingest_errors_source_position'))
    )
    op.create_table('ingest_sources',
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('source', name=op.f('pk_ingest_sources'))
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_key_at', ['key', 'at'], unique=False)

    op.create_table('trades',
    sa.Column('trade_id', sa.String(length=128), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('ts', sa.String(length=40), nullable=False),
    sa.Column('event_time', sa.Float(), nullable=False),
    sa.Column('collection_id', sa.String(length=128), nullable=False),
    sa.Column('token_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('seller_id', sa.String(length=128), nullable=False),
    sa.Column('buyer_id', sa.String(length=128), nullable=False),
    sa.Column('price', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=10), nullable=False),
    sa.Column('payment_method', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('trade_id', name=op.f('pk_trades'))
    )
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.create_index('ix_trades_buyer_id_event_time', ['buyer_id', 'event_time'], unique=False)
        batch_op.create_index('ix_trades_collection_id_event_time', ['collection_id', 'event_time'], unique=False)
        batch_op.create_index('ix_trades_seller_id_event_time', ['seller_id', 'event_time'], unique=False)
        batch_op.create_index('ix_trades_token_id_event_time', ['token_id', 'event_time'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('alert_trades',
    sa.Column('alert_id', sa.String(length=128), nullable=False),
    sa.Column('trade_id', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.alert_id'], name=op.f('fk_alert_trades_alert_id_alerts')),
    sa.PrimaryKeyConstraint('alert_id', 'trade_id', name=op.f('pk_alert_trades'))
    )
    with op.batch_alter_table('alert_trades', schema=None) as batch_op:
        batch_op.create_index('ix_alert_trades_trade_id', ['trade_id'], unique=False)

    op.create_table('cases',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('disposition', sa.String(length=30), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('proposed_by', sa.Integer(), nullable=True),
    sa.Column('approved_by', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('closed_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['approved_by'], ['users.id'], name=op.f('fk_cases_approved_by_users')),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_cases_assignee_id_users')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_cases_created_by_users')),
    sa.ForeignKeyConstraint(['proposed_by'], ['users.id'], name=op.f('fk_cases_proposed_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_status_updated_at', ['status', 'updated_at'], unique=False)

    op.create_table('episode_accounts',
    sa.Column('episode_id', sa.String(length=128), nullable=False),
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.episode_id'], name=op.f('fk_episode_accounts_episode_id_episodes')),
    sa.PrimaryKeyConstraint('episode_id', 'account_id', name=op.f('pk_episode_accounts'))
    )
    with op.batch_alter_table('episode_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_episode_accounts_account_id', ['account_id'], unique=False)

    op.create_table('sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_sessions'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_user_id', ['user_id'], unique=False)

    op.create_table('case_attachments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_attachments_case_id_cases')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_case_attachments_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_attachments'))
    )
    with op.batch_alter_table('case_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_attachments_case_id'), ['case_id'], unique=False)

    op.create_table('case_comments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_comments_case_id_cases')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_case_comments_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_comments'))
    )
    with op.batch_alter_table('case_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_comments_case_id'), ['case_id'], unique=False)

    op.create_table('case_episodes',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('episode_id', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_episodes_case_id_cases')),
    sa.ForeignKeyConstraint(['episode_id'], ['episodes.episode_id'], name=op.f('fk_case_episodes_episode_id_episodes')),
    sa.PrimaryKeyConstraint('case_id', 'episode_id', name=op.f('pk_case_episodes'))
    )
    with op.batch_alter_table('case_episodes', schema=None) as batch_op:
        batch_op.create_index('ix_case_episodes_episode_id', ['episode_id'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('case_episodes', schema=None) as batch_op:
        batch_op.drop_index('ix_case_episodes_episode_id')

    op.drop_table('case_episodes')
    with op.batch_alter_table('case_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_comments_case_id'))

    op.drop_table('case_comments')
    with op.batch_alter_table('case_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_attachments_case_id'))

    op.drop_table('case_attachments')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_user_id')

    op.drop_table('sessions')
    with op.batch_alter_table('episode_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_episode_accounts_account_id')

    op.drop_table('episode_accounts')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_status_updated_at')

    op.drop_table('cases')
    with op.batch_alter_table('alert_trades', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_trades_trade_id')

    op.drop_table('alert_trades')
    op.drop_table('users')
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_index('ix_trades_token_id_event_time')
        batch_op.drop_index('ix_trades_seller_id_event_time')
        batch_op.drop_index('ix_trades_collection_id_event_time')
        batch_op.drop_index('ix_trades_buyer_id_event_time')

    op.drop_table('trades')
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_key_at')

    op.drop_table('login_failures')
    op.drop_table('ingest_sources')
    op.drop_table('ingest_errors')
    with op.batch_alter_table('episodes', schema=None) as batch_op:
        batch_op.drop_index('ix_episodes_typology_score')
        batch_op.drop_index('ix_episodes_typology_event_time')
        batch_op.drop_index('ix_episodes_status_score')
        batch_op.drop_index('ix_episodes_status_event_time')
        batch_op.drop_index('ix_episodes_severity_rank_score')
        batch_op.drop_index('ix_episodes_severity_rank_event_time')
        batch_op.drop_index('ix_episodes_score')
        batch_op.drop_index('ix_episodes_event_time_facets')
        batch_op.drop_index('ix_episodes_event_time')
        batch_op.drop_index('ix_episodes_detector_score')
        batch_op.drop_index('ix_episodes_detector_event_time')
        batch_op.drop_index('ix_episodes_collection_id_score')
        batch_op.drop_index('ix_episodes_collection_id_event_time')
        batch_op.drop_index('ix_episodes_case_id')

    op.drop_table('episodes')
    op.drop_table('episode_counts')
    with op.batch_alter_table('collection_events', schema=None) as batch_op:
        batch_op.drop_index('ix_collection_events_collection_id_event_time')

    op.drop_table('collection_events')
    op.drop_table('audit_log')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_episode_id'))

    op.drop_table('alerts')
    with op.batch_alter_table('account_links', schema=None) as batch_op:
        batch_op.drop_index('ix_account_links_account_id')

    op.drop_table('account_links')
    with op.batch_alter_table('account_events', schema=None) as batch_op:
        batch_op.drop_index('ix_account_events_account_id_event_time')

    op.drop_table('account_events')
